// The typed errors of the lumen user API. All derive from lumen::Error.
#pragma once

#include <stdexcept>
#include <string>

namespace lumen {

/// Base of every error lumen throws at its API.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  ~Error() override;
};

/// Thrown by Get: the remote function threw. what() holds the original exception's type
/// name and message; TypeName() the type alone.
class TaskError : public Error {
 public:
  TaskError(const std::string& what, std::string type_name)
      : Error(what), type_name_(std::move(type_name)) {}
  ~TaskError() override;
  const std::string& TypeName() const { return type_name_; }

 private:
  std::string type_name_;
};

/// Thrown by Get and Remote: the actor is dead.
class ActorDiedError : public Error {
 public:
  using Error::Error;
  ~ActorDiedError() override;
};

/// Thrown by Get: the worker process died while running the task and its retries
/// (SetMaxRetries, default 3) are spent.
class WorkerCrashedError : public Error {
 public:
  using Error::Error;
  ~WorkerCrashedError() override;
};

/// Thrown by Get: every copy of the object is lost and it cannot be rebuilt.
class ObjectLostError : public Error {
 public:
  using Error::Error;
  ~ObjectLostError() override;
};

/// Thrown by Get: the process that owns the object is gone.
class OwnerDiedError : public ObjectLostError {
 public:
  using ObjectLostError::ObjectLostError;
  ~OwnerDiedError() override;
};

/// Thrown by Get with a timeout: the value was not ready in time.
class GetTimeoutError : public Error {
 public:
  using Error::Error;
  ~GetTimeoutError() override;
};

/// Thrown by Remote: the function was not registered with LUMEN_REMOTE. Also at Get
/// when a worker does not know the function by name.
class FunctionNotFoundError : public Error {
 public:
  using Error::Error;
  ~FunctionNotFoundError() override;
};

/// Thrown by Put, and Get of a task result: no room in the object store.
class ObjectStoreFullError : public Error {
 public:
  using Error::Error;
  ~ObjectStoreFullError() override;
};

/// Thrown by Get: the task was cancelled with lumen::Cancel before it finished.
class TaskCancelledError : public Error {
 public:
  using Error::Error;
  ~TaskCancelledError() override;
};

/// Thrown by Init and option setters: an invalid option (bad resource amount, unknown
/// address, ...), and by calls made before Init.
class ConfigError : public Error {
 public:
  using Error::Error;
  ~ConfigError() override;
};

}  // namespace lumen
