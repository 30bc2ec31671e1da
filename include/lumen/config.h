// lumen::Config — how a program starts or joins a lumen cluster.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace lumen {

/// Options for lumen::Init. A plain struct: every field has a documented default, and
/// `--lumen-<field>=<value>` flags (with '_' written as '-') override them when Init is
/// given argc/argv. Invalid values make Init throw ConfigError.
struct Config {
  /// Address ("host:port") of a running cluster's GCS, or "auto" for the cluster last
  /// started on this machine with `lumen start --head`. Empty (the default) starts an
  /// embedded one-node cluster inside this process; the environment variable
  /// LUMEN_ADDRESS, when set, replaces an empty address. Joining needs a node of the
  /// cluster on this machine (`lumen start --address=...`): the driver uses its raylet and
  /// object store. The node options below (num_cpus, num_gpus, resources,
  /// object_store_memory, object_spilling_directory, session_dir) are the embedded
  /// node's: set when joining, they are a ConfigError (the daemons have their own).
  std::string address;
  /// When joining: the IP of the node on this machine to use, if several run here.
  /// Empty (default): the head node if it runs here, else the first node found here.
  std::string node_ip_address;
  /// Logical CPUs of the embedded node. -1 (default): the machine's cores.
  double num_cpus = -1;
  /// GPUs of the embedded node. -1 (default): the NVIDIA devices the machine shows.
  double num_gpus = -1;
  /// Custom resources of the embedded node, name -> quantity (quantity > 0).
  std::map<std::string, double> resources;
  /// Bytes of the node's shared-memory object store. -1 (default): 30% of memory,
  /// capped by what /dev/shm allows. Init fails (ConfigError, with the sizes) when
  /// /dev/shm cannot hold what is asked for.
  int64_t object_store_memory = -1;
  /// Values (Put, task arguments, task results) whose serialized size is above this
  /// many bytes go to the node's shared-memory store and are read there without a copy;
  /// smaller ones travel inline with the RPCs. Default 100 KiB.
  int64_t max_inline_object_size = 100 * 1024;
  /// Where the store spills objects when it is full. Empty (default): <session>/spill.
  /// Spill files are deleted when their objects are freed.
  std::string object_spilling_directory;
  /// Namespace for named actors. Empty: an anonymous namespace of this job.
  std::string namespace_;
  /// Session directory (logs, sockets), removed at Shutdown. Empty:
  /// /tmp/lumen/session_<time>_<pid>. A path that does not exist is created and used; a
  /// path that exists gets a new session_<time>_<pid> inside it (lumen never deletes
  /// what it did not create).
  std::string session_dir;
  /// Runtime log level on stderr: trace, debug, info, warn (default), error, off.
  std::string log_level = "warn";
  /// Keep the session directory (worker logs) after Shutdown. Default: removed.
  bool keep_session_dir = false;
  /// Echo what workers print to this terminal, prefixed with "(pid=N) ".
  bool log_to_driver = true;
  /// Record every task's state changes for the state API (`lumen list tasks`,
  /// lumen::state); false (--lumen-task-events=false, which the job's workers also get)
  /// records none.
  bool task_events = true;
};

}  // namespace lumen
