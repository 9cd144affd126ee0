package node

import (
	"os"
	"sync/atomic"
	"unsafe"
)

// Direct writes of fetched chunks.
//
// A fetched file is fsynced before it is recorded, so the receiver gains
// nothing from keeping the bytes it writes in the page cache; writing them
// with O_DIRECT (where the platform and filesystem have it) sends them from
// our buffer to the disk and leaves the final fsync little to do. On the
// bench machine (a 2-core VM) a buffered write of 1 GiB into fresh page-cache
// pages costs 1.4-2.5 CPU-seconds of kernel time, and the fsync after it
// another second of wall time; the same GiB written with O_DIRECT in 1 MiB
// blocks costs 0.2 CPU-seconds with the fsync (BENCHMARKS.md, Sync).
//
// O_DIRECT wants offsets, lengths and buffer addresses aligned to the
// device's block. The chunks of a file arrive mostly in file order, so each
// staged file collects a run of contiguous fetched bytes in an aligned buffer
// and writes it out in whole blocks; the unaligned head and tail of a run,
// and any chunk when no buffer is free, go through the ordinary descriptor.
// A direct block never shares a page with a buffered write: the bytes of a
// block all belong to one run, and every byte of the file is written once.
//
// A direct write is synchronous: it returns once the disk has the bytes
// (0.6-1.1 s per GiB on the bench machine). So full buffers go to a writer
// goroutine of their own, through a queue bounded by the buffers themselves,
// and the chunks after them are received, verified and copied meanwhile;
// the fetcher waits for the disk only when every buffer is queued.
const (
	// directAlign is the alignment of direct writes: the page size, a
	// multiple of every common logical block size.
	directAlign = 4096
	// directBufSize is one run buffer: the size of a direct write.
	directBufSize = 1 << 20
	// maxDirectBuffers bounds the run buffers of one Apply (memory:
	// maxDirectBuffers * directBufSize = 8 MiB). A buffer is either some
	// file's current run, queued for (or in) a disk write, or free. Eight
	// leave room for the run of the file being received, the next file's
	// first run and about 6 MiB queued, the disk's time for 6-10 ms of
	// network receive at the bench's rates.
	maxDirectBuffers = 8
	// directMinFetch is the smallest file written directly: below it, the
	// extra descriptor costs more than the page cache does.
	directMinFetch = 2 * directBufSize
)

// directWriter is the direct side of one staged file.
type directWriter struct {
	f      *os.File // opened with O_DIRECT; closed by the writer goroutine
	buf    []byte   // the current run, nil when none; len(buf) == directBufSize
	start  int64    // file offset of buf[0], a multiple of directAlign
	n      int      // bytes of the run held in buf
	closed bool     // the close is queued: no more writes

	// Owned by the writer goroutine until directPool.drain returns.
	err     error // the first failed write (or close)
	refused bool  // the filesystem refused a direct write: the rest of this file goes through the page cache
}

// directJob is one queued disk write of a run buffer (buf[:n] at off), or
// with close set, the end of a file's direct writes.
type directJob struct {
	s     *stagedFile
	d     *directWriter
	buf   []byte
	n     int
	off   int64
	close bool
}

// directPool hands out the aligned run buffers of one Apply and writes full
// ones on its writer goroutine. get, submit and finish are called from the
// Apply's delivering side, one call at a time; drain waits for the writer.
type directPool struct {
	free    chan []byte // written buffers, back from the writer
	alloc   int         // buffers allocated
	held    int         // buffers that are some file's current run
	jobs    chan directJob
	stopped chan struct{} // closed when the writer goroutine returns
	written atomic.Int64  // bytes the writer wrote directly, not yet counted
}

// get returns a free run buffer, waiting for the writer to return one when
// all are queued, or nil when every buffer is some file's current run.
func (p *directPool) get() []byte {
	if p.free == nil {
		p.free = make(chan []byte, maxDirectBuffers)
	}
	var b []byte
	select {
	case b = <-p.free:
	default:
		switch {
		case p.alloc < maxDirectBuffers:
			p.alloc++
			b = alignedBuf(directBufSize)
		case p.held < p.alloc:
			b = <-p.free // queued ones come back once written
		default:
			return nil
		}
	}
	p.held++
	return b
}

// put returns an unused run buffer.
func (p *directPool) put(b []byte) {
	p.held--
	p.free <- b
}

// submit queues buf[:n] (whole blocks) to be written at off in s, and with
// it the buffer: it comes back to the pool once written.
func (p *directPool) submit(s *stagedFile, buf []byte, n int, off int64) {
	p.held--
	p.start()
	p.jobs <- directJob{s: s, d: s.direct, buf: buf, n: n, off: off}
}

// closeLater queues the close of s's direct descriptor after its writes.
func (p *directPool) closeLater(s *stagedFile) {
	p.start()
	p.jobs <- directJob{s: s, d: s.direct, close: true}
}

func (p *directPool) start() {
	if p.jobs != nil {
		return
	}
	p.jobs = make(chan directJob, 2*maxDirectBuffers)
	p.stopped = make(chan struct{})
	go p.writer(p.jobs, p.stopped)
}

// writer writes queued runs in order. A write the filesystem refuses goes
// through the page cache instead, and so does the rest of that file.
func (p *directPool) writer(jobs <-chan directJob, stopped chan<- struct{}) {
	defer close(stopped)
	for j := range jobs {
		d := j.d
		if j.close {
			if err := d.f.Close(); err != nil && d.err == nil {
				d.err = err
			}
			continue
		}
		b := j.buf[:j.n]
		if !d.refused {
			if _, err := d.f.WriteAt(b, j.off); err == nil {
				p.written.Add(int64(len(b)))
				p.free <- j.buf
				continue
			}
			d.refused = true
		}
		if _, err := j.s.f.WriteAt(b, j.off); err != nil && d.err == nil {
			d.err = err
		}
		p.free <- j.buf
	}
}

// drain waits until every queued write is done and counts the direct bytes
// in res. The files' errors (directWriter.err) are then safe to read.
func (p *directPool) drain(res *ApplyResult) {
	if p.jobs != nil {
		close(p.jobs)
		<-p.stopped
		p.jobs, p.stopped = nil, nil
	}
	res.BytesDirect += p.written.Swap(0)
}

// alignedBuf returns n bytes starting at an address that is a multiple of
// directAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); rem != 0 {
		skip = directAlign - rem
	}
	return b[skip : skip+n : skip+n]
}

// writeFetched writes a fetched chunk's bytes at off in s, directly when it
// can. Callers serialise the calls of one Apply.
func (s *stagedFile) writeFetched(r *run, data []byte, off int64) error {
	if s.direct == nil && !s.noDirect {
		s.openDirect(r.a)
	}
	d := s.direct
	if d == nil || d.closed {
		_, err := s.f.WriteAt(data, off)
		return err
	}
	if d.buf != nil && off != d.start+int64(d.n) { // the run breaks
		if err := s.endRun(r); err != nil {
			return err
		}
	}
	if d.buf == nil {
		head := int((directAlign - off%directAlign) % directAlign)
		if head >= len(data) {
			_, err := s.f.WriteAt(data, off)
			return err
		}
		if head > 0 {
			if _, err := s.f.WriteAt(data[:head], off); err != nil {
				return err
			}
			data, off = data[head:], off+int64(head)
		}
		if d.buf = r.direct.get(); d.buf == nil {
			_, err := s.f.WriteAt(data, off)
			return err
		}
		d.start, d.n = off, 0
	}
	for len(data) > 0 {
		k := copy(d.buf[d.n:], data)
		d.n += k
		data, off = data[k:], off+int64(k)
		if d.n == len(d.buf) {
			r.direct.submit(s, d.buf, d.n, d.start)
			d.start += int64(d.n)
			d.n = 0
			if d.buf = r.direct.get(); d.buf == nil { // the run ends here
				if len(data) > 0 {
					_, err := s.f.WriteAt(data, off)
					return err
				}
				return nil
			}
		}
	}
	return nil
}

// endRun queues the whole blocks of the current run for a direct write,
// writes its partial last block through the page cache, and gives up its
// buffer.
func (s *stagedFile) endRun(r *run) error {
	d := s.direct
	if d == nil || d.buf == nil {
		return nil
	}
	buf, n := d.buf, d.n
	d.buf, d.n = nil, 0
	whole := n &^ (directAlign - 1)
	if n > whole {
		if _, err := s.f.WriteAt(buf[whole:n], d.start+int64(whole)); err != nil {
			r.direct.put(buf)
			return err
		}
	}
	if whole == 0 {
		r.direct.put(buf)
		return nil
	}
	r.direct.submit(s, buf, whole, d.start)
	return nil
}

// openDirect opens s's temporary file a second time, for direct writes, if
// the file is large enough to gain from it and the filesystem allows it.
func (s *stagedFile) openDirect(a *Applier) {
	s.noDirect = true // one attempt per file
	if oDirect == 0 || s.want.Size < directMinFetch {
		return
	}
	f, err := a.Root.OpenFile(s.tmp, os.O_WRONLY|oDirect, 0)
	if err != nil {
		return
	}
	s.direct = &directWriter{f: f}
}

// closeDirect ends s's run and queues the close of its direct descriptor
// after its writes; the writes' outcome is known after drain
// (directErr).
func (s *stagedFile) closeDirect(r *run) error {
	d := s.direct
	if d == nil || d.closed {
		return nil
	}
	err := s.endRun(r)
	d.closed = true
	r.direct.closeLater(s)
	return err
}

// directErr is the first error of s's direct writes; call after drain.
func (s *stagedFile) directErr() error {
	if s.direct == nil {
		return nil
	}
	return s.direct.err
}
