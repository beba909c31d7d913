// gowalk: a statically linked Go program (CGO_ENABLED=0) that writes,
// reads and walks the directory tree given as its argument with the os and
// io packages, which make raw system calls: tests/run/static.sh runs it on
// a local directory and on a `ufuse run` mount and compares the outputs.
package main

import (
	"crypto/md5"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func must(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func main() {
	root := os.Args[1]
	at := func(p string) string { return filepath.Join(root, p) }
	must(os.MkdirAll(at("go/sub"), 0755))
	must(os.WriteFile(at("go/sub/w.txt"), []byte("written by go\n"), 0644))

	// O_APPEND writes, then a copy with io.Copy (copy_file_range first).
	f, err := os.OpenFile(at("go/app.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0644)
	must(err)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
	must(f.Close())
	in, err := os.Open(at("go/app.txt"))
	must(err)
	out, err := os.Create(at("go/copy.txt"))
	must(err)
	_, err = io.Copy(out, in)
	must(err)
	must(in.Close())
	must(out.Close())

	// Positioned I/O, seek, truncate, chmod.
	rw, err := os.OpenFile(at("go/rw.bin"), os.O_CREATE|os.O_RDWR, 0600)
	must(err)
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	_, err = rw.WriteAt(big, 1000)
	must(err)
	head := make([]byte, 16)
	_, err = rw.ReadAt(head, 1000+299990-6)
	if err != io.EOF {
		must(err)
	}
	pos, err := rw.Seek(-5, io.SeekEnd)
	must(err)
	must(rw.Truncate(200000))
	st, err := rw.Stat()
	must(err)
	fmt.Printf("rw: tail %x seek %d size %d\n", head[:6], pos, st.Size())
	must(rw.Close())
	must(os.Chmod(at("go/rw.bin"), 0640))

	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		must(err)
		info, err := d.Info()
		must(err)
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			fmt.Printf("dir %s %v\n", rel, info.Mode())
			return nil
		}
		data, err := os.ReadFile(p)
		must(err)
		fmt.Printf("file %s %v %d %x\n", rel, info.Mode(), info.Size(), md5.Sum(data))
		return nil
	}))
	must(os.Rename(at("go/copy.txt"), at("go/moved.txt")))
	must(os.Remove(at("go/sub/w.txt")))
	ents, err := os.ReadDir(at("go"))
	must(err)
	for _, e := range ents {
		fmt.Println("entry", e.Name())
	}
	must(os.RemoveAll(at("go/sub")))
	_, err = os.Stat(at("go/sub"))
	fmt.Println("after RemoveAll:", os.IsNotExist(err))
}
