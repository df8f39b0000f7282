package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/steps"
	"mcplan.io/mcplan/steps/statedir"
)

func (c *cli) kubeconfigCommand() *cobra.Command {
	var cluster, mergeInto string
	cmd := &cobra.Command{
		Use:   "kubeconfig PLAN",
		Short: "Print the clusters' kubeconfig, or merge it into another file",
		Long: `Print the kubeconfig of the plan's clusters (as fetched by the last apply),
with contexts named as the plan says (default context-<cluster>), or merge
it into a kubeconfig file, keeping that file's other entries. The output
holds client keys: treat it as a secret.`,
		Example: `  mcplan kubeconfig plan.yaml > kubeconfig
  mcplan kubeconfig --cluster cluster1 plan.yaml
  mcplan kubeconfig --merge-into ~/.kube/config plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.loadPlan(args[0])
			if err != nil {
				return err
			}
			done, err := openReadOnly(cmd.Context(), p, c.logf)
			if err != nil {
				return err
			}
			defer done()
			var sources []string
			for _, cl := range p.Clusters {
				if cluster != "" && cl.Name != cluster {
					continue
				}
				path := statedir.Kubeconfig(p.StateDir(), cl.Name)
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("cluster %s: no kubeconfig yet (%v): run mcplan apply first", cl.Name, err)
				}
				sources = append(sources, path)
			}
			if len(sources) == 0 {
				return fmt.Errorf("no cluster %q in the plan", cluster)
			}
			out, err := steps.MergeKubeconfigs(mergeInto, sources)
			if err != nil {
				return err
			}
			if mergeInto == "" {
				if c.onTerminal() {
					fmt.Fprintln(c.stderr, "Warning: this prints cluster-admin client keys to the terminal (and its scrollback); "+
						"redirect it to a 0600 file or use --merge-into")
				}
				_, err = c.stdout.Write(out)
				return err
			}
			if err := atomicfile.Write(mergeInto, out, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Merged %d cluster(s) into %s.\n", len(sources), mergeInto)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster")
	cmd.Flags().StringVar(&mergeInto, "merge-into", "", "merge into this kubeconfig file (written 0600) instead of printing")
	return cmd
}
