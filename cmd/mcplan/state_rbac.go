package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/statebackend"
)

func (c *cli) stateRBACCommand() *cobra.Command {
	var serviceAccount, userName, group string
	cmd := &cobra.Command{
		Use:   "rbac PLAN",
		Short: "Print the Role and RoleBinding an identity needs to use the kubernetes state backend",
		Long: `Print, as YAML for kubectl apply, the Role and RoleBinding with which an
identity (a CI job's ServiceAccount, a user, a group) can run mcplan on a
plan whose state.backend is kubernetes: get, create, update and delete on
Secrets of state.kubernetes.namespace (the state's chunks have generated
names, so the Role cannot name them: give the state a namespace of its
own), and get, create and update on its Lease. Nothing else: no list, no
other resource, no other namespace.`,
		Example: `  mcplan state rbac --service-account ci/mcplan plan.yaml | kubectl apply -f -`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := statePlan(args[0])
			if err != nil {
				return err
			}
			k, ok := p.KubernetesState()
			if !ok {
				return fmt.Errorf("%s: the plan has no state.kubernetes: it names the namespace the Role is for", args[0])
			}
			subject, err := rbacSubject(serviceAccount, userName, group, k.Namespace)
			if err != nil {
				return err
			}
			role, binding := stateRBAC(k, subject)
			for i, o := range []any{role, binding} {
				data, err := yaml.Marshal(o)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(c.stdout, "---")
				}
				fmt.Fprint(c.stdout, string(data))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&serviceAccount, "service-account", "", "bind a ServiceAccount, NAMESPACE/NAME (default mcplan in the state's namespace)")
	cmd.Flags().StringVar(&userName, "user", "", "bind a user instead")
	cmd.Flags().StringVar(&group, "group", "", "bind a group instead")
	return cmd
}

// rbacSubject is whom the RoleBinding binds: one of the flags, by default
// the ServiceAccount mcplan of the state's namespace.
func rbacSubject(serviceAccount, user, group, namespace string) (rbacv1.Subject, error) {
	set := 0
	for _, f := range []string{serviceAccount, user, group} {
		if f != "" {
			set++
		}
	}
	switch {
	case set > 1:
		return rbacv1.Subject{}, fmt.Errorf("give one of --service-account, --user and --group")
	case user != "":
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}, nil
	case group != "":
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}, nil
	case serviceAccount != "":
		ns, name, ok := strings.Cut(serviceAccount, "/")
		if !ok || ns == "" || name == "" {
			return rbacv1.Subject{}, fmt.Errorf("--service-account %q: want NAMESPACE/NAME", serviceAccount)
		}
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}, nil
	}
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: "mcplan"}, nil
}

// stateRBAC is the Role a run needs on a kubernetes backend (what
// statebackend.Secrets and LeaseLock call), and its binding to subject.
func stateRBAC(k plans.KubernetesBackend, subject rbacv1.Subject) (*rbacv1.Role, *rbacv1.RoleBinding) {
	name := k.Name + "-state"
	labels := map[string]string{statebackend.ManagedByLabel: statebackend.ManagedBy, statebackend.StateLabel: k.Name}
	lease := k.Name + "-lock"
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.Namespace, Labels: labels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{lease}, Verbs: []string{"get", "update"}},
			// A create names no object yet: RBAC cannot restrict it by name.
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		},
	}
	binding := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.Namespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{subject},
	}
	return role, binding
}
