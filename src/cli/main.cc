// `lumen`: start, stop and inspect cluster daemons (flags in docs/cluster.md).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>

#include "cli/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"lumen: start, stop and inspect the daemons of a lumen cluster"};
  app.require_subcommand(1);

  lumen::cli::StartOptions start;
  CLI::App* start_cmd = app.add_subcommand("start", "Start a node on this machine");
  start_cmd->add_flag("--head", start.head, "Start the head node (it hosts the GCS)");
  start_cmd->add_option("--address", start.address,
                        "Join the cluster whose head is at HOST:PORT");
  start_cmd->add_option("--port", start.port, "The GCS's port on the head node")
      ->check(CLI::Range(1, 65535));
  start_cmd->add_option("--node-ip-address", start.node_ip,
                        "This node's IP: what it listens on and other nodes reach it at");
  start_cmd->add_option("--num-cpus", start.num_cpus, "Logical CPUs (default: the cores)");
  start_cmd->add_option("--num-gpus", start.num_gpus, "GPUs (default: the devices found)");
  start_cmd->add_option("--resources", start.resources_json,
                        "Custom resources, as JSON: '{\"name\": amount}'");
  start_cmd->add_option("--object-store-memory", start.object_store_memory,
                        "Bytes of the shared-memory object store");
  start_cmd->add_option("--temp-dir", start.temp_dir,
                        "Where the node's session directory goes (default /tmp/lumen)");
  start_cmd->add_option("--dashboard-host", start.dashboard_host,
                        "Head: the address the state API (HTTP) listens on (127.0.0.1)");
  start_cmd->add_option("--dashboard-port", start.dashboard_port,
                        "Head: its port (8265; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  start_cmd->add_option("--max-task-events", start.max_task_events,
                        "Head: task attempts kept for the state API (100000)")
      ->check(CLI::Range(int64_t(1), int64_t(100000000)));
  start_cmd->add_flag("--block", start.block,
                      "Stay in the foreground as the node until SIGINT or SIGTERM");
  start_cmd->add_option("--log-level", start.log_level,
                        "trace, debug, info (default), warn, error, off");
  start_cmd->add_option("--health-check-period-ms", start.health_check_period_ms,
                        "Head: how often each node reports that it is alive (1000)");
  start_cmd->add_option("--health-check-failure-threshold",
                        start.health_check_failure_threshold,
                        "Head: reports a node may miss before it is declared dead (5)");
  start_cmd->add_option("--ready-fd", start.ready_fd)->group("");  // internal
  auto* mode = start_cmd->get_option("--head");
  start_cmd->get_option("--address")->excludes(mode);

  bool force = false;
  CLI::App* stop_cmd = app.add_subcommand("stop", "Stop every lumen daemon on this machine");
  stop_cmd->add_flag("--force", force, "SIGKILL at once instead of a clean stop");

  std::string status_address;
  CLI::App* status_cmd = app.add_subcommand("status", "Show the cluster's nodes and demands");
  status_cmd->add_option("--address", status_address,
                         "The head's HOST:PORT (default: LUMEN_ADDRESS, else the cluster "
                         "started on this machine)");

  lumen::cli::StateOptions state;
  auto address_option = [&state](CLI::App* command) {
    command->add_option("--address", state.address,
                        "The head's HOST:PORT (default: LUMEN_ADDRESS, else the cluster "
                        "started on this machine)");
    command->add_option("--format", state.format, "table (default) or json")
        ->check(CLI::IsMember({"table", "json"}));
  };
  CLI::App* list_cmd = app.add_subcommand(
      "list", "List tasks, actors, nodes, jobs or placement-groups of the cluster");
  list_cmd->add_option("resource", state.resource,
                       "tasks | actors | nodes | jobs | placement-groups")->required();
  list_cmd->add_option("-f,--filter", state.filters,
                       "KEY=VALUE or KEY!=VALUE (case-insensitive); repeat to AND them");
  list_cmd->add_option("--limit", state.limit, "Rows at most (default 100)")
      ->check(CLI::Range(size_t(1), size_t(100000000)));
  list_cmd->add_flag("--detail", state.detail, "Every field of each row");
  address_option(list_cmd);
  CLI::App* get_cmd = app.add_subcommand("get", "Show one task, actor, node, job or group");
  get_cmd->add_option("resource", state.resource,
                      "task | actor | node | job | placement-group")->required();
  get_cmd->add_option("id", state.id, "Its id (hex)")->required();
  address_option(get_cmd);
  CLI::App* summary_cmd = app.add_subcommand("summary", "Tasks or actors counted by state");
  summary_cmd->add_option("resource", state.resource, "tasks | actors")->required();
  address_option(summary_cmd);

  CLI11_PARSE(app, argc, argv);
  if (*list_cmd || *get_cmd || *summary_cmd) {
    if (state.address.empty() && std::getenv("LUMEN_ADDRESS") != nullptr) {
      state.address = std::getenv("LUMEN_ADDRESS");
    }
    if (*list_cmd) return lumen::cli::List(state);
    if (*get_cmd) return lumen::cli::GetOne(state);
    return lumen::cli::Summary(state);
  }
  if (*start_cmd) {
    if (!start.head && start.address.empty()) {
      std::fprintf(stderr, "lumen start: give --head, or --address=HOST:PORT of the head\n");
      return 2;
    }
    return lumen::cli::Start(start);
  }
  if (*stop_cmd) return lumen::cli::Stop(force);
  if (status_address.empty() && std::getenv("LUMEN_ADDRESS") != nullptr) {
    status_address = std::getenv("LUMEN_ADDRESS");
  }
  return lumen::cli::Status(status_address);
}
