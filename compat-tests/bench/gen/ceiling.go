package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

type ceilingResult struct {
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MBPerS     float64 `json:"mb_per_s"`
	BestMBPerS float64 `json:"best_mb_per_s"`
}

// runCeiling measures how fast this machine can move a page-cached file
// into a loopback TCP socket with sendfile(2) and read it out again: the
// upper bound for a broker serving fetches zero-copy to a local consumer.
func runCeiling(args []string) (any, error) {
	fs := newFlags("ceiling")
	path := fs.String("file", "", "file to send (created or extended to --bytes if shorter)")
	n := fs.Int64("bytes", 1<<30, "bytes to send per run")
	runs := fs.Int("runs", 3, "runs; the median and the best are reported")
	sendBuffer := fs.Int("send-buffer", 0, "the sender's SO_SNDBUF in bytes (0: the kernel's autotuning)")
	receiver := fs.String("receiver", "goroutine", "goroutine: the reader is a goroutine of this "+
		"process; process: a child process (benchgen sink), as a consumer is to a broker")
	fs.Parse(args)
	if *path == "" || *n < 1 || *runs < 1 {
		return nil, fmt.Errorf("need --file, --bytes >= 1 and --runs >= 1")
	}
	once := map[string]func(*net.TCPListener, *os.File, int64, int) (float64, error){
		"goroutine": sendOnce,
		"process":   sendToProcess,
	}[*receiver]
	if once == nil {
		return nil, fmt.Errorf("--receiver is goroutine or process, not %q", *receiver)
	}

	if err := ensureFile(*path, *n); err != nil {
		return nil, err
	}
	f, err := os.Open(*path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One full read puts the file in the page cache, so the runs measure
	// memory -> socket, not the disk.
	if _, err := io.CopyN(io.Discard, f, *n); err != nil {
		return nil, fmt.Errorf("warming %s: %w", *path, err)
	}

	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer ln.Close()

	var secs []float64
	for range *runs {
		s, err := once(ln, f, *n, *sendBuffer)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "ceiling: %.3f s, %.1f MB/s\n", s, float64(*n)/mib/s)
		secs = append(secs, s)
	}
	slices.Sort(secs)
	median := secs[len(secs)/2]
	return ceilingResult{
		Bytes:      *n,
		Seconds:    round3(median),
		MBPerS:     rate(float64(*n)/mib, median),
		BestMBPerS: rate(float64(*n)/mib, secs[0]),
	}, nil
}

// ensureFile makes path at least n bytes long, filled with non-zero data so
// that no filesystem can store it sparsely.
func ensureFile(path string, n int64) error {
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		if st.Size() >= n {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	chunk := filler(mib)
	for left := n; left > 0; left -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
			f.Close()
			return err
		}
	}
	// Flushed now so that write-back does not compete with the runs.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sendOnce sends the first n bytes of f over a fresh loopback connection and
// returns the seconds from the first sendfile call until the receiver has
// read the last byte.
func sendOnce(ln *net.TCPListener, f *os.File, n int64, sendBuffer int) (float64, error) {
	type received struct {
		n   int64
		at  time.Time
		err error
	}
	done := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- received{err: err}
			return
		}
		defer c.Close()
		got, err := receiveAll(c)
		done <- received{n: got, at: time.Now(), err: err}
	}()

	conn, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if sendBuffer > 0 {
		if err := conn.SetWriteBuffer(sendBuffer); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := sendfile(conn, f, n); err != nil {
		return 0, fmt.Errorf("sendfile: %w", err)
	}
	if err := conn.CloseWrite(); err != nil {
		return 0, err
	}
	r := <-done
	if r.err != nil {
		return 0, fmt.Errorf("receiver: %w", r.err)
	}
	if r.n != n {
		return 0, fmt.Errorf("receiver got %d of %d bytes", r.n, n)
	}
	return r.at.Sub(start).Seconds(), nil
}

// sendfile calls sendfile(2) directly on the socket's descriptor rather than
// relying on io.Copy picking it, so the figure is unambiguously zero-copy.
// The socket is non-blocking; on EAGAIN the callback returns false and Go's
// poller waits until it is writable again.
func sendfile(conn *net.TCPConn, f *os.File, n int64) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	in := int(f.Fd())
	var off int64
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		for off < n {
			// The kernel advances off; one call moves at most ~2 GiB.
			w, err := syscall.Sendfile(int(fd), in, &off, int(min(n-off, 1<<30)))
			switch {
			case err == syscall.EAGAIN:
				return false
			case err == syscall.EINTR:
				continue
			case err != nil:
				sendErr = err
				return true
			case w == 0:
				sendErr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return sendErr
}

// receiveAll reads c to its end. A plain read loop: io.Copy into io.Discard would
// use Discard's own small buffer instead of this 1 MiB one, the size of the fetch
// reader's.
func receiveAll(c net.Conn) (int64, error) {
	buf := make([]byte, mib)
	var got int64
	for {
		k, err := c.Read(buf)
		got += int64(k)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// sendToProcess is sendOnce with the reader in a child process (benchgen sink), as a
// broker and its consumer are two processes. Each then has its own threads, which the
// kernel may place on different cores, and a wakeup of the reader is a wakeup of
// another process: a goroutine reader in the sender's process is instead often run on
// the sender's own thread as soon as the sender blocks.
func sendToProcess(ln *net.TCPListener, f *os.File, n int64, sendBuffer int) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	sink := exec.Command(self, "sink", "--addr", ln.Addr().String())
	var out bytes.Buffer
	sink.Stdout = &out
	sink.Stderr = os.Stderr
	if err := sink.Start(); err != nil {
		return 0, err
	}
	// Whatever fails below, the sink does not outlive this run.
	waited := false
	defer func() {
		if !waited {
			sink.Process.Kill()
			sink.Wait()
		}
	}()
	// The sender is the accepting side here, as a broker is. A sink that fails before it
	// connects must not leave the accept waiting forever.
	if err := ln.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	conn, err := ln.AcceptTCP()
	ln.SetDeadline(time.Time{})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if sendBuffer > 0 {
		if err := conn.SetWriteBuffer(sendBuffer); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := sendfile(conn, f, n); err != nil {
		return 0, fmt.Errorf("sendfile: %w", err)
	}
	if err := conn.CloseWrite(); err != nil {
		return 0, err
	}
	waited = true
	if err := sink.Wait(); err != nil {
		return 0, fmt.Errorf("benchgen sink: %w (%s)", err, bytes.TrimSpace(out.Bytes()))
	}
	var r sinkResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return 0, fmt.Errorf("benchgen sink printed %q: %w", out.String(), err)
	}
	if r.Bytes != n {
		return 0, fmt.Errorf("receiver got %d of %d bytes", r.Bytes, n)
	}
	// Wall-clock times of two processes on one machine: the same clock.
	return time.Unix(0, r.DoneUnixNanos).Sub(start).Seconds(), nil
}

type sinkResult struct {
	Bytes         int64 `json:"bytes"`
	DoneUnixNanos int64 `json:"done_unix_nanos"`
}

// runSink is the reader of `ceiling --receiver process`: it connects to --addr, reads
// to the end, and reports the bytes and the wall-clock time the last one arrived.
func runSink(args []string) (any, error) {
	fs := newFlags("sink")
	addr := fs.String("addr", "", "host:port to read from")
	fs.Parse(args)
	c, err := net.Dial("tcp", *addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	got, err := receiveAll(c)
	if err != nil {
		return nil, err
	}
	return sinkResult{Bytes: got, DoneUnixNanos: time.Now().UnixNano()}, nil
}
