// deploycheck checks the deployment files with the libraries Docker itself runs, for
// machines without a Docker engine (the tests use it):
//
//	deploycheck compose -f docker-compose.yml --env-file .env.example [--profile demo]
//	    loads the Compose file as `docker compose config` does (compose-go: interpolation,
//	    the Compose specification's schema, references) and prints the resolved project.
//	deploycheck dockerfile Dockerfile
//	    parses the Dockerfile with BuildKit's parser and runs BuildKit's build checks
//	    (`docker build --check`); any warning fails.
//
// Exit 0 when the file passes, 1 with the reason otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: deploycheck compose|dockerfile ..."))
	}
	var err error
	switch os.Args[1] {
	case "compose":
		err = compose(os.Args[2:])
	case "dockerfile":
		err = dockerfile(os.Args[2:])
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "deploycheck:", err)
	os.Exit(1)
}

func compose(args []string) error {
	flags := flag.NewFlagSet("compose", flag.ExitOnError)
	var files, envFiles, profiles list
	flags.Var(&files, "f", "compose file (repeatable)")
	flags.Var(&envFiles, "env-file", "env file for interpolation (repeatable)")
	flags.Var(&profiles, "profile", "profile to enable (repeatable)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	options, err := cli.NewProjectOptions(
		files,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalYAML()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

func dockerfile(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: deploycheck dockerfile PATH")
	}
	file, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer file.Close()
	result, err := parser.Parse(file)
	if err != nil {
		return err
	}
	var warnings []string
	lint := linter.New(&linter.Config{
		Warn: func(rule, description, url, msg string, location []parser.Range) {
			line := 0
			if len(location) > 0 {
				line = location[0].Start.Line
			}
			warnings = append(warnings, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
		},
	})
	stages, _, err := instructions.Parse(result.AST, lint)
	if err != nil {
		return err
	}
	if len(warnings) > 0 {
		return fmt.Errorf("%s", strings.Join(warnings, "; "))
	}
	fmt.Printf("%d stages\n", len(stages))
	return nil
}
