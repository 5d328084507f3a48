package elasticsearch

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// generationDoc is the id of the meta index's document naming the
// generation.
const generationDoc = "generation"

// Generation returns the generation stored in the meta index, creating it
// when it is missing: at the first start, and after the indices were
// deleted. Instances racing to create it agree: the first create wins and
// the others read it back.
func (s *Store) Generation(ctx context.Context) (string, error) {
	for range 3 {
		gen, err := s.readGeneration(ctx)
		if err != nil || gen != "" {
			return gen, err
		}
		doc := map[string]any{"generation": rand.Text(), "created": s.now().UTC().Format(time.RFC3339Nano)}
		status, body, err := s.call(ctx, http.MethodPut, "/"+s.metaIndex()+"/_create/"+generationDoc, nil, doc)
		if err != nil {
			return "", fmt.Errorf("creating the generation: %w", err)
		}
		if status != http.StatusCreated && status != http.StatusOK && status != http.StatusConflict {
			return "", fmt.Errorf("creating the generation in %s: %w", s.metaIndex(), apiError(status, body))
		}
		// Created here or by another instance: read back what won.
	}
	return "", errors.New("the generation document keeps disappearing from " + s.metaIndex())
}

// readGeneration returns the stored generation, "" when there is none.
// Gets are real-time: no refresh is needed after the create.
func (s *Store) readGeneration(ctx context.Context) (string, error) {
	status, body, err := s.call(ctx, http.MethodGet, "/"+s.metaIndex()+"/_doc/"+generationDoc, nil, nil)
	if err != nil {
		return "", fmt.Errorf("reading the generation: %w", err)
	}
	if status == http.StatusNotFound {
		return "", nil // no document, or no index (it is created with the document)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("reading the generation from %s: %w", s.metaIndex(), apiError(status, body))
	}
	var got struct {
		Found  bool `json:"found"`
		Source struct {
			Generation string `json:"generation"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return "", fmt.Errorf("decoding the generation: %w", err)
	}
	if !got.Found || got.Source.Generation == "" {
		return "", nil
	}
	return got.Source.Generation, nil
}
