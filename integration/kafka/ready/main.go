// Command ready waits until a Kafka broker serves requests: kafka.sh runs it after the
// broker's port accepts connections, because listening is not serving (the KRaft
// controller may not have elected itself yet). Ready means a metadata request lists a
// broker and a topic can be created and deleted.
//
//	go run ./integration/kafka/ready -brokers 127.0.0.1:9092 -timeout 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap addresses")
	timeout := flag.Duration("timeout", time.Minute, "how long to wait")
	flag.Parse()

	if err := run(*brokers, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "ready: Kafka at %s: %v\n", *brokers, err)
		os.Exit(1)
	}
}

func run(brokers string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return wait(ctx, strings.Split(brokers, ","))
}

func wait(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	var last error
	for {
		if last = probe(ctx, adm); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, adm *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) == 0 || md.Controller < 0 {
		return errors.New("metadata lists no broker or no controller")
	}
	topic := fmt.Sprintf("kite-ready-%d", time.Now().UnixNano())
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		return fmt.Errorf("deleting topic %s: %w", topic, err)
	}
	return nil
}
