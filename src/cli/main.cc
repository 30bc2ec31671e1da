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
  start_cmd->add_option("--dashboard-port", start.dashboard_port,
                        "The dashboard's port (reserved; no dashboard yet)");
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

  CLI11_PARSE(app, argc, argv);
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
