package enclave

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// ModelManifestHeader is the first line of a model manifest.
const ModelManifestHeader = "sealgate model manifest v1\n"

// MaxModelFiles bounds the files of a model directory.
const MaxModelFiles = 100_000

// modelHashBuffer is the read buffer of one file being hashed.
const modelHashBuffer = 1 << 20

// ModelDirDigest is what DigestModelDir found.
type ModelDirDigest struct {
	// SHA256 is the model directory digest.
	SHA256 [sha256.Size]byte
	// Files and Bytes count the files and their total size.
	Files int
	Bytes int64
}

// modelFile is one manifest entry.
type modelFile struct {
	path string // relative, slash-separated
	abs  string // to open
	sum  [sha256.Size]byte
	size int64
}

// DigestModelDir computes the model directory digest of path, a
// directory or a single file, as proto/SPEC.md §10.3 specifies it:
//
//	"sealgate model manifest v1\n"
//	for each regular file, in byte order of its slash-separated path relative to the directory:
//	    hex(SHA-256(contents)) " " decimal size " " path "\n"
//
// and the digest is SHA-256 of that manifest. Every regular file counts,
// hidden ones included (remove tool caches such as .cache/ from the
// directory, or the digest changes with them); a symbolic link counts as
// the regular file it points to, under the link's own path, since Hugging
// Face snapshot directories are links into a blob store. Links to
// directories, devices, sockets and pipes are refused, as are paths with
// control bytes or invalid UTF-8 and directories of more than
// MaxModelFiles files. A single file is digested as a directory holding
// only it.
//
// Files are read as streams through a fixed buffer, a few at once, so
// memory stays bounded whatever their size; the manifest entries are kept
// in memory, at most MaxModelFiles of them. It reads every file once and
// stops early when ctx is done.
//
// What the digest proves is bounded by the worker's measured code: it
// names the bytes that were there when the worker started, and the
// serving engine, part of the measured image, is trusted to load the same
// files.
func DigestModelDir(ctx context.Context, path string) (ModelDirDigest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return ModelDirDigest{}, fmt.Errorf("model directory: %w", err)
	}
	var files []*modelFile
	switch {
	case fi.Mode().IsRegular():
		name := filepath.Base(path)
		if err := checkManifestPath(name); err != nil {
			return ModelDirDigest{}, err
		}
		files = []*modelFile{{path: name, abs: path}}
	case fi.IsDir():
		// A link to the directory (a "current" link, say) is walked as
		// the directory itself.
		root, err := filepath.EvalSymlinks(path)
		if err != nil {
			return ModelDirDigest{}, fmt.Errorf("model directory: %w", err)
		}
		if files, err = listModelDir(root); err != nil {
			return ModelDirDigest{}, err
		}
	default:
		return ModelDirDigest{}, fmt.Errorf("model directory: %s is %s, want a directory or a regular file", path, modeName(fi.Mode()))
	}
	if len(files) == 0 {
		return ModelDirDigest{}, fmt.Errorf("model directory: %s holds no files, want the model's weight files", path)
	}
	slices.SortFunc(files, func(a, b *modelFile) int { return cmp.Compare(a.path, b.path) })
	if err := hashModelFiles(ctx, files); err != nil {
		return ModelDirDigest{}, err
	}
	h := sha256.New()
	io.WriteString(h, ModelManifestHeader)
	out := ModelDirDigest{Files: len(files)}
	for _, f := range files {
		io.WriteString(h, hex.EncodeToString(f.sum[:])+" "+strconv.FormatInt(f.size, 10)+" "+f.path+"\n")
		out.Bytes += f.size
	}
	h.Sum(out.SHA256[:0])
	return out, nil
}

// listModelDir lists the regular files under dir, following links to
// regular files.
func listModelDir(dir string) ([]*modelFile, error) {
	var files []*modelFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := checkManifestPath(rel); err != nil {
			return err
		}
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("model directory: link %s: %w", rel, err)
			}
			mode = fi.Mode().Type()
			if fi.IsDir() {
				return fmt.Errorf("model directory: %s links to a directory, want links to regular files only", rel)
			}
		}
		switch {
		case d.IsDir():
			return nil
		case mode.IsRegular():
		default:
			return fmt.Errorf("model directory: %s is %s, want regular files", rel, modeName(mode))
		}
		if len(files) == MaxModelFiles {
			return fmt.Errorf("model directory: more than %d files, want at most %d", MaxModelFiles, MaxModelFiles)
		}
		files = append(files, &modelFile{path: rel, abs: p})
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("model directory: %w", err)
		}
		return nil, err
	}
	return files, nil
}

// modeName names a file type for an error message.
func modeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// checkManifestPath refuses a path the manifest cannot carry on one line.
func checkManifestPath(p string) error {
	if !utf8.ValidString(p) {
		return fmt.Errorf("model directory: a path is not valid UTF-8 (%q), want UTF-8 names", p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("model directory: path %q has control byte 0x%02x, want none", p, c)
		}
	}
	return nil
}

// hashModelFiles fills in each file's digest and size, hashing up to
// min(GOMAXPROCS, 4) files at once.
func hashModelFiles(ctx context.Context, files []*modelFile) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan *modelFile)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, len(files)) {
		wg.Go(func() {
			buf := make([]byte, modelHashBuffer)
			for f := range next {
				if err := hashModelFile(ctx, f, buf); err != nil {
					cancel(err)
				}
			}
		})
	}
send:
	for _, f := range files {
		select {
		case next <- f:
		case <-ctx.Done():
			break send
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func hashModelFile(ctx context.Context, f *modelFile, buf []byte) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	r, err := os.Open(f.abs)
	if err != nil {
		return fmt.Errorf("model directory: %w", err)
	}
	defer r.Close()
	h := sha256.New()
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		f.size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("model directory: reading %s: %w", f.path, err)
		}
	}
	h.Sum(f.sum[:0])
	return nil
}
