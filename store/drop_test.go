package store

import (
	"fmt"
	"testing"
)

// TestDropFolder: dropping a folder removes all of its records and none of
// another folder's, including one whose ID the dropped one prefixes.
func TestDropFolder(t *testing.T) {
	db, _ := openTestDB(t)
	fill := func(id string, n int) {
		f := db.Folder(id)
		b := f.Batch()
		for i := range n {
			b.PutLocal(FileInfo{Path: fmt.Sprintf("f%04d", i), Kind: KindFile, Size: 1, Chunks: testChunks(id+fmt.Sprint(i), 1)}, "dev")
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := db.LogStore(id).Put([]byte("op-"+id), []byte("raw")); err != nil {
			t.Fatal(err)
		}
	}
	fill("folder", dropBatchKeys/2+7) // more keys in all than one deletion batch
	fill("folder-other", 3)
	count := func(id string) (files, ops int) {
		db.Folder(id).Walk("", func(FileInfo) error { files++; return nil })
		db.LogStore(id).ForEach(func(_, _ []byte) error { ops++; return nil })
		return
	}
	if err := db.DropFolder("folder"); err != nil {
		t.Fatal(err)
	}
	if files, ops := count("folder"); files != 0 || ops != 0 {
		t.Fatalf("after drop: %d files, %d ops left", files, ops)
	}
	if seq, err := db.Folder("folder").Sequence("dev"); err != nil || seq != 0 {
		t.Fatalf("sequence after drop = %d, %v; want 0", seq, err)
	}
	if files, ops := count("folder-other"); files != 3 || ops != 1 {
		t.Fatalf("the other folder lost records: %d files, %d ops", files, ops)
	}
	if err := db.DropFolder(""); err == nil {
		t.Fatal("dropping an empty folder ID succeeded")
	}
}
