package store

import (
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Batch collects versions to store in one folder and writes them with one
// atomic, synced goleveldb write (Commit). A Batch is not safe for concurrent
// use; FileInfos given to it must not be modified until Commit returns.
type Batch struct {
	f   *FolderIndex
	ops []FileInfo
	err error // first failure of PutLocal, returned by Commit
}

// Batch starts a batch of writes to the folder.
func (f *FolderIndex) Batch() *Batch {
	return &Batch{f: f, err: f.err}
}

// PutLocal adds a version made by the local device: it sets fi.Author=local,
// fi.Seq to local's next sequence number in this folder (counting versions
// already handed out, in this batch or another) and fi.Version to
// fi.Version.Update(local, seq), and returns the value that Commit will store.
// A failure to read the stored sequence is returned by Commit.
func (b *Batch) PutLocal(fi FileInfo, local DeviceID) FileInfo {
	if b.err != nil {
		return fi
	}
	seq, err := b.f.reserveSeq(local)
	if err != nil {
		b.err = fmt.Errorf("store: put local %q: %w", fi.Path, err)
		return fi
	}
	fi.Author = local
	fi.Seq = seq
	fi.Version = fi.Version.Update(local, seq)
	b.ops = append(b.ops, fi)
	return fi
}

// Put adds a version as given (a remote device's version). Its Author must be
// set and its Seq non-zero.
func (b *Batch) Put(fi FileInfo) {
	b.ops = append(b.ops, fi)
}

// Len returns the number of versions added since the last Commit.
func (b *Batch) Len() int { return len(b.ops) }

// Commit stores every version added, in order (a later version of the same
// path replaces an earlier one), with one atomic, synced goleveldb write: the
// path records, their author-index entries (the replaced versions' entries
// removed), the chunk map (the replaced versions' entries removed) and the
// per-author sequence records. Nothing is written if any version is invalid
// (ErrInvalidFileInfo) or a replaced record cannot be read. The batch is empty
// afterwards and may be reused.
func (b *Batch) Commit() error {
	if b.err != nil {
		return b.err
	}
	if len(b.ops) == 0 {
		return nil
	}
	f := b.f
	ldb := f.db.ldb
	f.db.commitMu.Lock()
	defer f.db.commitMu.Unlock()

	wb := new(leveldb.Batch)
	written := make(map[string]*FileInfo, len(b.ops)) // versions of this batch, by path
	owners := make(map[string]string)                 // author-index entries written or removed ("") by this batch
	highest := make(map[DeviceID]uint64)

	ownerOf := func(key []byte) (string, error) {
		if p, ok := owners[string(key)]; ok {
			return p, nil
		}
		v, ok, err := get(ldb, "commit", key)
		if err != nil || !ok {
			return "", err
		}
		return decodePathRecord(v)
	}

	for i := range b.ops {
		fi := &b.ops[i]
		val, err := encodeFileInfo(fi)
		if err != nil {
			return err
		}
		old := written[fi.Path]
		if old == nil {
			o, ok, err := f.getFile(ldb, fi.Path)
			if err != nil {
				return fmt.Errorf("store: commit: reading the version %q replaces: %w", fi.Path, err)
			}
			if ok {
				old = &o
			}
		}
		if old != nil {
			// The replaced version's author-index entry goes, unless another
			// path's version has taken that (author, seq) since.
			k := seqKey(f.seqPfx, old.Author, old.Seq)
			owner, err := ownerOf(k)
			if err != nil {
				return fmt.Errorf("store: commit %q: %w", fi.Path, err)
			}
			if owner == fi.Path {
				wb.Delete(k)
				owners[string(k)] = ""
			}
			if old.Kind == KindFile && !old.Deleted {
				for _, c := range old.Chunks {
					wb.Delete(chunkKey(f.chunkPfx, c.CID.KeyString(), fi.Path))
				}
			}
		}

		wb.Put(fileKey(f.filePfx, fi.Path), val)
		k := seqKey(f.seqPfx, fi.Author, fi.Seq)
		wb.Put(k, encodePathRecord(fi.Path))
		owners[string(k)] = fi.Path
		if fi.Kind == KindFile && !fi.Deleted {
			var off int64
			for _, c := range fi.Chunks {
				wb.Put(chunkKey(f.chunkPfx, c.CID.KeyString(), fi.Path), encodeChunkLoc(off, c.Size))
				off += int64(c.Size)
			}
		}
		highest[fi.Author] = max(highest[fi.Author], fi.Seq)
		written[fi.Path] = fi
	}
	for author, seq := range highest {
		stored, err := f.storedSeq(ldb, author)
		if err != nil {
			return fmt.Errorf("store: commit: %w", err)
		}
		if seq > stored {
			wb.Put(metaKey(f.metaPfx, author), encodeSeqRecord(seq))
		}
	}
	err := ldb.Write(wb, &opt.WriteOptions{Sync: true})
	f.gen.Add(1) // written or not, a scan's copy of the entries is stale
	if err != nil {
		return translate("commit", err)
	}
	for author, seq := range highest {
		f.noteSeq(author, seq)
	}
	b.ops = nil
	return nil
}
