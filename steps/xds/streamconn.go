package xds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// forwardErrorWait bounds how long a connection whose data stream ended
// waits for the error stream to say why.
const forwardErrorWait = 2 * time.Second

// streamConn is one forwarded connection to a pod's port: the
// portforward protocol's pair of streams, one carrying the bytes and one
// on which the kubelet reports why it could not connect ("connection
// refused"), seen by Read and Write as their error.
type streamConn struct {
	conn   streamhttp.Connection
	data   streamhttp.Stream
	errors streamhttp.Stream
	target string
	// remoteDone is closed once the error stream ended; remoteErr is what
	// it said, nil for nothing.
	remoteDone chan struct{}
	remoteErr  error
	closeOnce  sync.Once
}

// openStreams opens the error and data streams for one connection to
// port (request id) on conn.
func openStreams(ctx context.Context, conn streamhttp.Connection, port int, id int64, target string) (*streamConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(port))
	headers.Set(corev1.PortForwardRequestIDHeader, strconv.FormatInt(id, 10))
	errStream, err := conn.CreateStream(headers)
	if err != nil {
		return nil, fmt.Errorf("%s: open the error stream: %w", target, err)
	}
	// Nothing is ever written to the error stream by this side.
	_ = errStream.Close()
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(headers)
	if err != nil {
		conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("%s: open the data stream: %w", target, err)
	}
	sc := &streamConn{conn: conn, data: data, errors: errStream, target: target, remoteDone: make(chan struct{})}
	go sc.watchErrors()
	return sc, nil
}

// watchErrors reads the error stream to its end. A message there means
// the forward failed: the data stream is reset so that a blocked Read
// returns.
func (s *streamConn) watchErrors() {
	msg, err := io.ReadAll(s.errors)
	switch {
	case len(msg) > 0:
		s.remoteErr = fmt.Errorf("%s: %s", s.target, strings.TrimSpace(string(msg)))
		_ = s.data.Reset()
	case err != nil && !isClosedError(err):
		s.remoteErr = fmt.Errorf("%s: read the error stream: %w", s.target, err)
	}
	close(s.remoteDone)
}

// forwardError is what the error stream said, waiting a little for it
// when the data stream has just ended.
func (s *streamConn) forwardError() error {
	select {
	case <-s.remoteDone:
		return s.remoteErr
	case <-time.After(forwardErrorWait):
		return nil
	}
}

func (s *streamConn) Read(b []byte) (int, error) {
	n, err := s.data.Read(b)
	if err != nil {
		if ferr := s.forwardError(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

func (s *streamConn) Write(b []byte) (int, error) {
	n, err := s.data.Write(b)
	if err != nil {
		select {
		case <-s.remoteDone:
			if s.remoteErr != nil {
				return n, s.remoteErr
			}
		default:
		}
	}
	return n, err
}

// Close resets the data stream (the kubelet then closes its connection
// to the pod) and forgets both streams.
func (s *streamConn) Close() error {
	s.closeOnce.Do(func() {
		_ = s.data.Reset()
		s.conn.RemoveStreams(s.data, s.errors)
	})
	return nil
}

func (s *streamConn) LocalAddr() net.Addr  { return forwardAddr("local") }
func (s *streamConn) RemoteAddr() net.Addr { return forwardAddr(s.target) }

// Deadlines are not supported by the streams; gRPC sets them only while
// it closes a connection, which Close ends anyway.
func (s *streamConn) SetDeadline(time.Time) error      { return nil }
func (s *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (s *streamConn) SetWriteDeadline(time.Time) error { return nil }

// forwardAddr names an end of a forwarded connection.
type forwardAddr string

func (a forwardAddr) Network() string { return "portforward" }
func (a forwardAddr) String() string  { return string(a) }

func isClosedError(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) ||
		strings.Contains(strings.ToLower(err.Error()), "use of closed network connection") ||
		strings.Contains(strings.ToLower(err.Error()), "stream reset")
}
