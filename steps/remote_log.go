package steps

import (
	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/remote"
)

// remoteOptions streams a remote command's output into the step's log,
// line by line. Only for commands whose output holds no secret.
func remoteOptions(env *engine.Env) remote.RunOptions {
	return remote.RunOptions{Output: func(stream, line string) { env.Logf("%s", line) }}
}
