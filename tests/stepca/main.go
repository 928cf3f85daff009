// step-ca 0.19.0 from Debian's Go sources (golang-github-smallstep-certificates-dev ships the
// libraries but no cmd/step-ca): upstream's cmd/step-ca/main.go cut to the start command and
// the software backends, built by tests/stepca/build.sh for tests/test_stepca.py.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"

	_ "github.com/smallstep/certificates/cas/softcas"
	_ "github.com/smallstep/certificates/cas/stepcas"
	_ "github.com/smallstep/certificates/kms/softkms"
)

func main() {
	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Usage = "step-ca 0.19.0 (Debian's sources), for fedgate's tests"
	app.Flags = commands.AppCommand.Flags
	// As upstream does: run the start command on the whole command line, so that its flags
	// may follow the config file (urfave/cli reorders a command's arguments, not an app's).
	app.Action = func(ctx *cli.Context) error {
		cmd := cli.Command{Name: "start", Action: commands.AppCommand.Action,
			Flags: commands.AppCommand.Flags, HideHelp: true}
		set := flag.NewFlagSet(app.Name, flag.ContinueOnError)
		if err := set.Parse(os.Args); err != nil {
			return err
		}
		return cmd.Run(cli.NewContext(app, set, nil))
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "step-ca:", err)
		os.Exit(1)
	}
}
