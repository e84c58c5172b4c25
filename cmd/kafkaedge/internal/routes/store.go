package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
)

// routesFile is the name of the file under -data-dir that holds the routes
// created through the admin API.
const routesFile = "routes.json"

// storeVersion is the format version written to routes.json.
const storeVersion = 1

// Store keeps admin-created routes in DIR/routes.json. Every write replaces
// the file atomically: a temporary file in the same directory is written and
// fsynced, renamed over the old one, and the directory is fsynced.
type Store struct {
	dir  string
	path string
}

// storeFile is the JSON layout of routes.json.
type storeFile struct {
	Version int               `json:"version"`
	Routes  []json.RawMessage `json:"routes"`
}

// OpenStore creates dir if needed and returns its store.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir, path: filepath.Join(dir, routesFile)}, nil
}

// Path is the store's file, DIR/routes.json.
func (s *Store) Path() string { return s.path }

// Load reads the stored routes. A missing file is an empty set; anything
// unreadable is an error naming the file, never dropped. Whether the
// routes collide is the Registry's to check (Load).
func (s *Store) Load() ([]*apisix.RouteSpec, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	var f storeFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %s", s.path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s is corrupt: data after the JSON object", s.path)
	}
	if f.Version != storeVersion {
		return nil, fmt.Errorf("%s: unsupported version %d (want %d)", s.path, f.Version, storeVersion)
	}
	out := make([]*apisix.RouteSpec, len(f.Routes))
	for i, raw := range f.Routes {
		r, err := apisix.ParseRoute(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: routes[%d]: %w", s.path, i, err)
		}
		if r.ID == "" {
			return nil, fmt.Errorf("%s: routes[%d]: missing id", s.path, i)
		}
		out[i] = r
	}
	return out, nil
}

// Save replaces routes.json with routes.
func (s *Store) Save(routes []*apisix.RouteSpec) error {
	f := storeFile{Version: storeVersion, Routes: make([]json.RawMessage, len(routes))}
	for i, r := range routes {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("save routes: encode route %s: %w", r.ID, err)
		}
		f.Routes[i] = b
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save routes: %w", err)
	}
	data = append(data, '\n')
	return writeAtomic(s.dir, s.path, data)
}

// writeAtomic writes data to path through a temporary file in dir.
func writeAtomic(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("save %s: write: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("save %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("save %s: close: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save %s: rename: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save %s: open dir for fsync: %w", path, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("save %s: fsync dir: %w", path, err)
	}
	return nil
}
