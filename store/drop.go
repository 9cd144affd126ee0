package store

import (
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// dropBatchKeys bounds the deletions DropFolder writes in one goleveldb batch.
const dropBatchKeys = 10_000

// DropFolder deletes everything the database holds for one folder: its file
// entries, author index, chunk map, sequence records and rights-log ops. It
// is for a folder the node stops syncing for good (the caller must have
// stopped every user of its FolderIndex and LogStore first); the files on
// disk are not touched. A later Folder call with the same ID starts empty.
func (db *DB) DropFolder(folderID string) error {
	if folderID == "" || len(folderID) > MaxFolderIDLength {
		return ErrInvalidFolder
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	db.mu.Lock()
	if f, ok := db.folders[folderID]; ok {
		defer f.gen.Add(1) // a scan's copy of the entries is stale
	}
	db.mu.Unlock()
	for _, ks := range []byte{ksFile, ksSeq, ksChunk, ksMeta, ksLogOp} {
		pfx := folderPrefix(ks, folderID)
		if err := db.deleteRange(pfx, prefixEnd(pfx)); err != nil {
			return err
		}
	}
	db.mu.Lock()
	delete(db.folders, folderID)
	db.mu.Unlock()
	return nil
}

func (db *DB) deleteRange(start, limit []byte) error {
	for {
		it := db.ldb.NewIterator(&util.Range{Start: start, Limit: limit}, nil)
		wb := new(leveldb.Batch)
		for wb.Len() < dropBatchKeys && it.Next() {
			wb.Delete(append([]byte(nil), it.Key()...))
		}
		err := it.Error()
		it.Release()
		if err != nil {
			return translate("drop folder", err)
		}
		if wb.Len() == 0 {
			return nil
		}
		if err := db.ldb.Write(wb, &opt.WriteOptions{Sync: true}); err != nil {
			return translate("drop folder", err)
		}
	}
}
