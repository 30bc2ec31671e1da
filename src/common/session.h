// The session directory of one cluster: logs/, sockets/, and an owner pid file.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace lumen {

class Session {
 public:
  /// Creates the session directory with logs/ and sockets/, after removing stale
  /// sessions under /tmp/lumen whose owner is dead. `dir` empty: a new
  /// /tmp/lumen/session_<time>_<pid>. `dir` that does not exist: created, and owned by
  /// the session. `dir` that exists: a new session_<time>_<pid> inside it, so that
  /// Remove never deletes anything the session did not create.
  static absl::StatusOr<Session> Create(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string LogsDir() const { return dir_ + "/logs"; }
  std::string SocketPath(const std::string& name) const {
    return dir_ + "/sockets/" + name + ".sock";
  }
  /// A POSIX shared-memory name for this session ("/lumen_<pid>_<n>_<what>"): a segment
  /// left behind by a process that died is removed by the next Session::Create.
  std::string ShmName(const std::string& what) const;
  /// Removes the directory tree. Safe to call twice.
  void Remove() const;

  /// Where sessions go by default (/tmp/lumen).
  static std::string Root();
  /// The file naming the GCS of the cluster last started on this machine ("host:port"),
  /// what `address = "auto"` reads: <Root>/current_cluster, whatever a daemon's temp dir.
  static std::string CurrentClusterFile() { return Root() + "/current_cluster"; }

 private:
  std::string dir_;
  int serial_ = 0;  // tells apart the sessions of one process
};

}  // namespace lumen
