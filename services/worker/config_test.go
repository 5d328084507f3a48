package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr []string // substrings; none: valid
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "empty id", change: func(c *Config) { c.ID = "" }, wantErr: []string{"id: must not be empty"}},
		{name: "id with a space", change: func(c *Config) { c.ID = "my worker" }, wantErr: []string{`id: "my worker" may only contain`}},
		{name: "id too long", change: func(c *Config) { c.ID = strings.Repeat("w", 201) }, wantErr: []string{"id: is 201 characters long"}},
		{name: "every problem at once", change: func(c *Config) {
			c.Concurrency, c.HeartbeatInterval, c.ShutdownGrace = 0, 0, -time.Second
		}, wantErr: []string{"concurrency: must be at least 1", "heartbeat_interval: must be at least 10ms", "shutdown_grace: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.change(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestDefaultIDsDiffer(t *testing.T) {
	a, b := Defaults().ID, Defaults().ID
	if a == b {
		t.Errorf("two default ids are both %q", a)
	}
	if err := (Config{ID: a, Concurrency: 1, HeartbeatInterval: time.Second}).Validate(); err != nil {
		t.Errorf("default id %q: %v", a, err)
	}
}

func TestRegisterMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if err := RegisterMetrics(reg); err != nil {
			t.Fatalf("RegisterMetrics() = %v", err)
		}
	}
}
