// The `lumen` command: start, stop and inspect the daemons of a cluster.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lumen::cli {

struct StartOptions {
  bool head = false;
  std::string address;            // the head's GCS, for a node that joins
  int port = 6380;                // the GCS's port on the head
  std::string node_ip = "127.0.0.1";
  double num_cpus = -1;           // -1: the machine's cores
  double num_gpus = -1;           // -1: the devices found
  std::string resources_json;     // {"name": amount, ...}
  int64_t object_store_memory = -1;
  std::string temp_dir = "/tmp/lumen";
  std::string dashboard_host = "127.0.0.1";  // head: the state API's HTTP server
  int dashboard_port = 8265;      // 0: a free port
  int64_t max_task_events = 100000;  // head: task attempts the state API keeps
  bool block = false;
  int ready_fd = -1;              // internal: where a daemon reports that it is up
  std::string log_level = "info";
  int64_t health_check_period_ms = 1000;  // head: how often nodes report liveness
  int health_check_failure_threshold = 5; // head: missed reports before a node is dead
};

/// `lumen start`: without --block, starts the node as a daemon and returns once it is
/// registered, printing its id and how to connect; with --block this process is the
/// node until SIGINT or SIGTERM. Returns the exit code.
int Start(const StartOptions& options);
/// `lumen stop`: SIGTERM to every lumen daemon of this machine (SIGKILL after a grace
/// period, or at once with `force`). Returns the exit code.
int Stop(bool force);
/// `lumen status`: the nodes of the cluster at `address` ("" or "auto": the one started
/// here), their resources used / total, and the demands waiting. Non-zero when no
/// cluster answers.
int Status(const std::string& address);

/// `lumen list | get | summary` (state.cc): the head's state API.
struct StateOptions {
  std::string address;   // the head's GCS ("" / "auto": the cluster started here)
  std::string resource;  // tasks, actors, nodes, jobs, placement-groups (or singular)
  std::string id;        // get
  std::vector<std::string> filters;  // list: key=value, key!=value
  size_t limit = 100;    // list: rows at most (paged through)
  bool detail = false;   // list: every field of each row
  std::string format = "table";  // or json
};
int List(const StateOptions& options);
int GetOne(const StateOptions& options);
int Summary(const StateOptions& options);

/// Resolves "" / "auto" to the cluster started on this machine; empty when none.
std::string ResolveAddress(const std::string& address);
/// Parses --resources: a JSON object of name -> amount (> 0); an error names what is wrong.
bool ParseResources(const std::string& json, std::map<std::string, double>* out,
                    std::string* error);

}  // namespace lumen::cli
