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

// pluginEnv is what every command that starts plugins needs: the
// environment (loadEnv), and the agenthost executable, which runs the
// bundled plugins and confines every plugin.
func pluginEnv() (map[string]string, string, error) {
	env, err := loadEnv()
	if err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find the agenthost executable: %w", err)
	}
	return env, self, nil
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
