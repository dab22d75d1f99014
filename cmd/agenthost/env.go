package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/joho/godotenv"
)

// loadEnv returns the process environment with ./.env underneath it: a
// variable set in the shell wins over the file, as elizaOS does.
func loadEnv() (map[string]string, error) {
	env := map[string]string{}
	fileEnv, err := godotenv.Read(".env")
	switch {
	case err == nil:
		for k, v := range fileEnv {
			env[k] = v
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("read .env: %w", err)
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

func newLogger(env map[string]string) hclog.Logger {
	level := hclog.LevelFromString(env["AGENTHOST_LOG_LEVEL"])
	if level == hclog.NoLevel {
		level = hclog.LevelFromString(env["LOG_LEVEL"])
	}
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "agenthost", Level: level, Output: os.Stderr,
		JSONFormat: env["AGENTHOST_LOG_FORMAT"] == "json",
	})
}
