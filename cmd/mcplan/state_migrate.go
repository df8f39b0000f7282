package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/statebackend"
)

func (c *cli) stateMigrateCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "migrate --to kubernetes|local PLAN",
		Short: "Move the state between the state directory and the kubernetes backend",
		Long: `Copy the whole state (state.json, the CA material, inventories,
kubeconfigs, pinned host keys) from the state directory to the Secrets
state.kubernetes names (--to kubernetes), or from there back into the
state directory (--to local), under both locks, and check that what
arrived is byte for byte what left. Then set state.backend in the plan to
match. The backend may live in one of the plan's own clusters once it
exists: apply with local state first, then migrate; mcplan then warns that
destroying that cluster destroys the state.`,
		Example: `  mcplan state migrate --to kubernetes plan.yaml
  mcplan state migrate --to local plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to != plans.BackendKubernetes && to != plans.BackendLocal {
				return fmt.Errorf("--to %q: use kubernetes or local", to)
			}
			p, err := statePlan(args[0])
			if err != nil {
				return err
			}
			if p.PassphraseEnv() != "" {
				return fmt.Errorf("%s: state migrate moves plain states: remove state.encryption, migrate, then set it again (the next apply seals the state where it is)", args[0])
			}
			lock, err := engine.AcquireLock(p.StateDir(), "mcplan state migrate")
			if err != nil {
				return err
			}
			defer lock.Release()
			b := &backend{stateDir: p.StateDir()}
			if err := b.connect(p, "mcplan state migrate --to "+to); err != nil {
				return err
			}
			if err := b.acquire(cmd.Context(), 0, c.logf, nil); err != nil {
				return err
			}
			defer b.held.Release()
			remote, version, err := b.secrets.Read(cmd.Context())
			if err != nil {
				return err
			}
			local, err := statebackend.ReadSnapshot(p.StateDir())
			if err != nil {
				return err
			}
			where := fmt.Sprintf("Secret %s/%s", b.secrets.Namespace, b.secrets.Name)
			if to == plans.BackendKubernetes {
				if version != "" {
					return fmt.Errorf("%s already holds a state: migrate it --to local first, or name another state.kubernetes.name", where)
				}
				if len(local) == 0 {
					return fmt.Errorf("the state directory %s holds no state to migrate", p.StateDir())
				}
				data, err := local.Encode()
				if err != nil {
					return err
				}
				if _, err := b.secrets.Write(cmd.Context(), data, ""); err != nil {
					return err
				}
				back, _, err := b.secrets.Read(cmd.Context())
				if err != nil {
					return err
				}
				if !bytes.Equal(back, data) {
					return fmt.Errorf("%s: what was read back differs from what was written", where)
				}
				fmt.Fprintf(c.stdout, "Migrated %d files (%d bytes compressed) from %s to %s. Set state.backend: kubernetes in %s.\n", len(local), len(data), p.StateDir(), where, args[0])
				if cl := b.cluster(p); cl != "" {
					fmt.Fprintf(c.stderr, "Warning: the state is kept in %s, a cluster of this plan: destroying that cluster destroys the state; migrate it --to local first.\n", cl)
				}
				return nil
			}
			if version == "" {
				return fmt.Errorf("%s holds no state to migrate", where)
			}
			snap, err := statebackend.DecodeSnapshot(remote)
			if err != nil {
				return err
			}
			if err := snap.WriteTo(p.StateDir()); err != nil {
				return err
			}
			back, err := statebackend.ReadSnapshot(p.StateDir())
			if err != nil {
				return err
			}
			for path, data := range snap {
				if !bytes.Equal(back[path], data) {
					return fmt.Errorf("%s: %s differs from the backend's after the migration", p.StateDir(), path)
				}
			}
			fmt.Fprintf(c.stdout, "Migrated %d files from %s to %s. Set state.backend: local in %s; the Secrets stay until you delete them (kubectl -n %s delete secret -l %s=%s).\n",
				len(snap), where, p.StateDir(), args[0], b.secrets.Namespace, statebackend.StateLabel, b.secrets.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "kubernetes or local")
	return cmd
}
