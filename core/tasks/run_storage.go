package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kiteflow/kite/core/plugin"
	"github.com/kiteflow/kite/core/storage"
)

// storageTasks are Kestra's internal storage tasks Kite runs.
func storageTasks() []*plugin.Type {
	return []*plugin.Type{
		{
			Name:        "storage-write",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.storage.Write"},
			Description: "Write rendered content to a file of internal storage; its URI is the `uri` output.",
			Properties: []plugin.Property{
				req("content", dyn(str()), "The file's content."),
				opt("extension", dyn(str()), "The file name's extension (default .ion, as in Kestra)."),
			},
			Outputs: []plugin.Property{
				opt("uri", str(), "The kite:/// URI of the file written."),
				opt("size", integer(), "Its size in bytes."),
			},
		},
		{
			Name:        "storage-size",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.storage.Size", "io.kestra.core.tasks.storages.Size"},
			Description: "Get the size of a file of internal storage as the `size` output.",
			Properties: []plugin.Property{
				req("uri", dyn(str()), "The kite:/// URI of the file."),
			},
			Outputs: []plugin.Property{opt("size", integer(), "The file's size in bytes.")},
		},
		{
			Name:        "storage-delete",
			Category:    plugin.CategoryTask,
			Aliases:     []string{"io.kestra.plugin.core.storage.Delete", "io.kestra.core.tasks.storages.Delete"},
			Description: "Delete a file of internal storage.",
			Properties: []plugin.Property{
				req("uri", dyn(str()), "The kite:/// URI of the file."),
				opt("errorOnMissing", dyn(boolean()), "Fail when the file does not exist (default false)."),
			},
			Outputs: []plugin.Property{
				opt("uri", str(), "The URI of the file deleted."),
				opt("deleted", boolean(), "Whether a file was deleted."),
			},
		},
		{
			Name:     "storage-purge-current-execution-files",
			Category: plugin.CategoryTask,
			Aliases: []string{
				"io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles",
				"io.kestra.plugin.core.storage.PurgeExecution", "io.kestra.core.tasks.storages.PurgeExecution",
			},
			Description: "Delete every file of the current execution from internal storage.",
			Outputs:     []plugin.Property{opt("uris", anyValue(), "The URIs of the files deleted.")},
		},
	}
}

// runStorageWrite is Kestra's Write task.
func runStorageWrite(ctx context.Context, rc *RunContext) (*Result, error) {
	content, err := rc.String(ctx, "content")
	if err != nil {
		return nil, err
	}
	ext, err := rc.String(ctx, "extension")
	if err != nil {
		return nil, err
	}
	switch {
	case ext == "":
		ext = ".ion"
	case !strings.HasPrefix(ext, "."):
		ext = "." + ext
	}
	if strings.Contains(ext, "/") {
		return nil, fmt.Errorf("extension: %q holds a slash; give a file name suffix like .csv", ext)
	}
	uri, err := rc.Files.Put(ctx, rc.Task.ID+ext, strings.NewReader(content))
	if err != nil {
		return nil, err
	}
	return &Result{Outputs: map[string]any{"uri": uri, "size": int64(len(content))}}, nil
}

// runStorageSize is Kestra's Size task.
func runStorageSize(ctx context.Context, rc *RunContext) (*Result, error) {
	uri, err := rc.String(ctx, "uri")
	if err != nil {
		return nil, err
	}
	info, err := rc.Files.Stat(ctx, uri)
	if err != nil {
		return nil, err
	}
	return &Result{Outputs: map[string]any{"size": info.Size}}, nil
}

// runStorageDelete is Kestra's Delete task.
func runStorageDelete(ctx context.Context, rc *RunContext) (*Result, error) {
	uri, err := rc.String(ctx, "uri")
	if err != nil {
		return nil, err
	}
	errorOnMissing, err := boolProp(ctx, rc, "errorOnMissing", false)
	if err != nil {
		return nil, err
	}
	if err := rc.Files.check(uri); err != nil {
		return nil, err
	}
	err = rc.Files.Store.Delete(ctx, uri)
	switch {
	case errors.Is(err, storage.ErrNotFound) && !errorOnMissing:
		rc.Logf(LevelInfo, "%s does not exist; nothing to delete", uri)
		return &Result{Outputs: map[string]any{"uri": uri, "deleted": false}}, nil
	case err != nil:
		return nil, err
	}
	return &Result{Outputs: map[string]any{"uri": uri, "deleted": true}}, nil
}

// runStoragePurgeExecution deletes the current execution's files.
func runStoragePurgeExecution(ctx context.Context, rc *RunContext) (*Result, error) {
	f := rc.Files
	if f == nil || f.Store == nil {
		return nil, errNoStorage
	}
	prefix := storage.ExecutionPrefix(f.Namespace, f.FlowID, f.ExecutionID)
	infos, err := f.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if _, err := f.Store.DeletePrefix(ctx, prefix); err != nil {
		return nil, err
	}
	uris := make([]any, 0, len(infos))
	for _, i := range infos {
		uris = append(uris, i.URI)
	}
	rc.Logf(LevelInfo, "deleted %d files of execution %s", len(uris), f.ExecutionID)
	return &Result{Outputs: map[string]any{"uris": uris}}, nil
}
