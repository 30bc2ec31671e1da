// A framed request/reply transport over stream sockets, for the call that is hot between
// two processes: PushTasks (actor calls, and tasks on leased workers) — over a Unix socket
// between the processes of a node, over TCP between nodes. gRPC
// hands every call from the caller's thread to its own threads and back on both sides;
// here the caller writes the request straight to the socket, one event thread per
// process reads every connection, and the callee's reply is written by whichever thread
// finished the call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "common/waker.h"

namespace lumen::rpc {

class FrameLoop;
class FrameConnection;

/// A request arrived on `connection`: answer it with connection->Reply(id, ...), from any
/// thread, once. Runs on the thread that reads the connection (the loop's, or a borrower's).
using FrameHandler = std::function<void(const std::shared_ptr<FrameConnection>& connection,
                                        uint64_t id, std::string payload)>;

/// One connection. The loop's thread reads it, except while a thread that waits for
/// what comes on it has borrowed it (Borrow): then that thread reads and dispatches it
/// itself, and the loop's thread is not woken for it. On the wire every frame is a
/// 16-byte header (payload size, kind, status code, call id; little-endian, whatever the
/// host) and the payload: a request's message, an OK reply's message, or a failed
/// reply's error text.
class FrameConnection : public std::enable_shared_from_this<FrameConnection> {
 public:
  using ReplyCallback = std::function<void(absl::Status, std::string payload)>;

  /// Client side: sends `payload` as a request; `callback` runs once, on the thread
  /// that reads the reply (the loop's, or a borrower's), with the callee's reply or a connection error (Unavailable; marked
  /// MarkNotDelivered when the request surely never left this process).
  void Call(std::string_view payload, ReplyCallback callback);
  /// Server side: answers request `id` (from any thread). False if the connection is gone.
  bool Reply(uint64_t id, const absl::Status& status, std::string_view payload);
  /// Stops reading and sending; calls still unanswered fail (on the thread that reads it).
  void Close();
  /// Closed (by Close, the peer, or an error): calls on it fail.
  bool Closed() ABSL_LOCKS_EXCLUDED(send_mutex_) {
    MutexLock lock(&send_mutex_);
    return closed_;
  }

  /// While it lives, the loop's thread does not read `connection` (it still writes what
  /// senders queued); Wait reads it on the borrowing thread. For a thread that is about
  /// to sleep until a reply (or a request) comes on this connection: it then wakes once,
  /// not after the loop's thread woke and handed it over. Several may borrow at once.
  class Borrow {
   public:
    explicit Borrow(std::shared_ptr<FrameConnection> connection);
    ~Borrow();
    Borrow(const Borrow&) = delete;
    Borrow& operator=(const Borrow&) = delete;
    /// Blocks until input comes (read and dispatched here: handlers and reply callbacks
    /// run on this thread, and must not wait on this connection themselves), `waker` is
    /// woken, or `deadline`. False once the connection is closed (nothing more will come
    /// on it) or poll fails; true may be spurious (the caller looks again).
    bool Wait(const Waker& waker, std::chrono::steady_clock::time_point deadline);

   private:
    std::shared_ptr<FrameConnection> connection_;
  };

 private:
  friend class FrameLoop;
  struct Header {
    uint32_t size;
    uint16_t kind;  // kRequest or kReply
    uint16_t code;  // a reply's absl::StatusCode
    uint64_t id;
  };
  static_assert(sizeof(Header) == 16);
  static constexpr uint16_t kRequest = 1;
  static constexpr uint16_t kReply = 2;

  FrameConnection(FrameLoop* loop, int fd, uint64_t key, bool server)
      : loop_(loop), fd_(fd), key_(key), server_(server) {}
  /// Writes (or queues) one frame; false when nothing of it can be sent any more.
  bool Send(const Header& header, std::string_view payload);
  /// Loop thread: writes what Send queued. False on a write error.
  bool Flush();
  /// Reads and dispatches what arrived (the reading thread's share of the loop's work).
  /// False: the connection failed (`why`) and must be dropped.
  bool Read(absl::Status* why) ABSL_LOCKS_EXCLUDED(read_mutex_);
  /// Stop: writes what is queued, waiting for the peer to drain until `deadline`.
  void FlushUntil(std::chrono::steady_clock::time_point deadline);
  /// Reads what arrived and dispatches whole frames. False: close it.
  bool ReadAvailable(absl::Status* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mutex_);
  bool Dispatch(const Header& header, std::string payload, absl::Status* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mutex_);
  /// Runs `callback` with `status` on the loop's thread (the call never left).
  void FailLater(ReplyCallback callback, absl::Status status);
  /// Closes the socket (once no borrower polls it) and fails what waits for a reply.
  void Finish(const absl::Status& why) ABSL_LOCKS_EXCLUDED(read_mutex_);
  void WantWrite(bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mutex_);
  /// Tells the loop which events to watch: input unless borrowed, output when queued.
  void Rearm() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mutex_);

  FrameLoop* const loop_;
  const int fd_;
  const uint64_t key_;
  const bool server_;
  FrameHandler handler_;  // server side; set before the first read
  // One thread reads at a time (the loop's or a borrower's); taken before send_mutex_.
  Mutex read_mutex_;
  // The socket is closed under both mutexes, and not while a borrower may poll it, so
  // nobody reads, writes or polls a reused descriptor.
  Mutex send_mutex_;
  bool closed_ ABSL_GUARDED_BY(send_mutex_) = false;
  bool fd_open_ ABSL_GUARDED_BY(send_mutex_) = true;
  bool want_write_ ABSL_GUARDED_BY(send_mutex_) = false;
  int borrowers_ ABSL_GUARDED_BY(send_mutex_) = 0;
  std::string out_ ABSL_GUARDED_BY(send_mutex_);  // accepted; written up to out_sent_
  size_t out_sent_ ABSL_GUARDED_BY(send_mutex_) = 0;
  Mutex calls_mutex_;
  uint64_t next_id_ ABSL_GUARDED_BY(calls_mutex_) = 1;
  bool failed_ ABSL_GUARDED_BY(calls_mutex_) = false;
  absl::flat_hash_map<uint64_t, ReplyCallback> calls_ ABSL_GUARDED_BY(calls_mutex_);
  bool read_failed_ ABSL_GUARDED_BY(read_mutex_) = false;
  std::string in_ ABSL_GUARDED_BY(read_mutex_);  // bytes read, not yet dispatched
  size_t in_pos_ ABSL_GUARDED_BY(read_mutex_) = 0;
};

/// The event thread that reads every connection of this process, and its listener.
class FrameLoop {
 public:
  using Handler = FrameHandler;

  FrameLoop() = default;
  ~FrameLoop();
  FrameLoop(const FrameLoop&) = delete;
  FrameLoop& operator=(const FrameLoop&) = delete;

  absl::Status Start();
  /// Accepts connections at `path` (replacing a stale socket file), handing requests to
  /// `handler`. Call once, after Start.
  absl::Status Listen(const std::string& path, Handler handler);
  /// Also accepts connections over TCP at `ip` (a free port), for other nodes, handing
  /// requests to Listen's handler. Call once, after Listen. Returns "ip:port".
  absl::StatusOr<std::string> ListenTcp(const std::string& ip);
  /// Connects to a listener at `path` (Unavailable when nothing listens there).
  absl::StatusOr<std::shared_ptr<FrameConnection>> Connect(const std::string& path);
  /// Connects to a TCP listener at "ip:port" (Unavailable when nothing answers within
  /// `timeout`; InvalidArgument for a malformed address). The connection has TCP_NODELAY
  /// and keepalive probes, so a peer host that vanishes fails its calls in about 30 s.
  absl::StatusOr<std::shared_ptr<FrameConnection>> ConnectTcp(
      const std::string& address, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Closes every connection (failing unanswered calls), removes the socket file, joins
  /// the thread. Idempotent. Afterwards Connect fails and callbacks run on the caller.
  void Stop();

 private:
  friend class FrameConnection;
  static constexpr uint64_t kWakeKey = 0;
  static constexpr uint64_t kListenKey = 1;
  static constexpr uint64_t kTcpListenKey = 2;

  static constexpr size_t kReadChunk = 64 << 10;

  void Run();
  /// Runs `fn` on the loop's thread (inline once the loop has stopped).
  void Post(std::function<void()> fn);
  absl::StatusOr<std::shared_ptr<FrameConnection>> Register(int fd, bool server);
  void Accept(uint64_t key);
  /// Watches `events` of a connection's socket (0: only hang-ups and errors).
  void Modify(int fd, uint64_t key, uint32_t events);
  /// Forgets a connection that failed and finishes it.
  void Drop(const std::shared_ptr<FrameConnection>& connection, const absl::Status& why);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  Mutex mutex_;
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t next_key_ ABSL_GUARDED_BY(mutex_) = 3;
  std::map<uint64_t, std::shared_ptr<FrameConnection>> connections_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mutex_);
  int listen_fd_ ABSL_GUARDED_BY(mutex_) = -1;
  int tcp_listen_fd_ ABSL_GUARDED_BY(mutex_) = -1;
  std::string listen_path_ ABSL_GUARDED_BY(mutex_);
  Handler handler_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::rpc
