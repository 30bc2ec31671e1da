// The state API on real daemons: `lumen list | get | summary` against a three-node
// loopback cluster running a known workload (counts, states, the nodes tasks ran on),
// and the head's HTTP server (/api/v0/) with good and bad requests.
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "cluster_util.h"
#include "lumen/lumen.h"

namespace {

int Square(int x) { return x * x; }
int Fail() { throw std::runtime_error("state-test failure"); }

class Greeter {
 public:
  static Greeter* Create() { return new Greeter(); }
  std::string Hello(std::string name) { return "hello " + name; }
};

}  // namespace

LUMEN_REMOTE(Square, Fail, Greeter::Create, &Greeter::Hello);

namespace lumen::test {
namespace {

using nlohmann::json;
namespace bhttp = boost::beast::http;

struct HttpReply {
  int status = 0;
  json body;
};

// One HTTP request to the head's state API.
HttpReply Http(const std::string& address, bhttp::verb verb, const std::string& target,
               std::string body = "") {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  size_t colon = address.rfind(':');
  socket.connect({boost::asio::ip::make_address(address.substr(0, colon)),
                  static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))});
  bhttp::request<bhttp::string_body> request(verb, target, 11);
  request.set(bhttp::field::host, address);
  request.body() = std::move(body);
  request.prepare_payload();
  boost::beast::error_code error;
  bhttp::write(socket, request, error);  // a refused large body may cut the write short
  boost::beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(socket, buffer, response);
  return {response.result_int(), json::parse(response.body(), nullptr, false)};
}

class StateClusterTest : public ThreeNodeTest {
 protected:
  // `lumen ARGS --address=HEAD`: its exit code, and its output in *out.
  int Lumen(const std::string& args, std::string* out) {
    return RunCommand(LumenCli() + " " + args + " --address=" + cluster_.address(), out);
  }
  json LumenJson(const std::string& args) {
    std::string out;
    EXPECT_EQ(Lumen(args + " --format=json", &out), 0) << out;
    json parsed = json::parse(out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << out;
    return parsed;
  }
  // Two tasks on each node, one that fails, an actor (on node 2) called three times.
  void RunWorkload() {
    std::vector<ObjectRef<int>> refs;
    for (size_t node = 0; node < 3; ++node) {
      for (int i = 0; i < 2; ++i) {
        refs.push_back(Task(Square).SetSchedulingStrategy(On(node)).Remote(i));
      }
    }
    for (auto& ref : refs) Get(ref);
    EXPECT_THROW(Get(Task(Fail).Remote()), TaskError);
    greeter_ = Actor(Greeter::Create).SetSchedulingStrategy(On(2)).Remote();
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(*Get(greeter_.Task(&Greeter::Hello).Remote("x")), "hello x");
    }
  }
  ActorHandle<Greeter> greeter_;
};

TEST_F(StateClusterTest, CliListsGetsAndSummarizesTheWorkload) {
  RunWorkload();
  // Events reach the head within a flush period.
  json tasks;
  ASSERT_TRUE(WaitUntil([&] {
    tasks = LumenJson("list tasks -f name=Square -f state=FINISHED");
    return tasks.value("total", 0) == 6;
  })) << tasks.dump(2);
  std::map<std::string, int> per_node;
  for (const json& task : tasks["rows"]) per_node[task["node_id"]]++;
  for (size_t node = 0; node < 3; ++node) EXPECT_EQ(per_node[NodeIdOf(node)], 2) << node;

  json failed = LumenJson("list tasks -f name=Fail");
  ASSERT_EQ(failed["rows"].size(), 1u) << failed.dump(2);
  EXPECT_EQ(failed["rows"][0]["state"], "FAILED");
  EXPECT_NE(failed["rows"][0]["error_message"].get<std::string>().find("state-test failure"),
            std::string::npos);

  json calls = LumenJson("list tasks -f type=ACTOR_TASK");
  ASSERT_EQ(calls["total"], 3);
  for (const json& call : calls["rows"]) EXPECT_EQ(call["node_id"], NodeIdOf(2));

  json nodes = LumenJson("list nodes");
  ASSERT_EQ(nodes["total"], 3);
  for (const json& node : nodes["rows"]) EXPECT_EQ(node["state"], "ALIVE");

  json jobs = LumenJson("list jobs");
  ASSERT_EQ(jobs["total"], 1);
  EXPECT_EQ(jobs["rows"][0]["state"], "RUNNING");
  EXPECT_EQ(jobs["rows"][0]["driver_pid"], getpid());

  json actors = LumenJson("list actors");
  ASSERT_EQ(actors["total"], 1);
  std::string actor_id = actors["rows"][0]["actor_id"];
  EXPECT_EQ(actors["rows"][0]["node_id"], NodeIdOf(2));
  EXPECT_EQ(actors["rows"][0]["state"], "ALIVE");

  // For people: tables, a detail view, lookups and summaries.
  std::string out;
  ASSERT_EQ(Lumen("list actors", &out), 0) << out;
  EXPECT_NE(out.find("ACTOR_ID"), std::string::npos) << out;
  EXPECT_NE(out.find(actor_id), std::string::npos) << out;
  EXPECT_NE(out.find("Greeter"), std::string::npos) << out;
  ASSERT_EQ(Lumen("list tasks --limit=2", &out), 0) << out;
  EXPECT_NE(out.find("(2 of "), std::string::npos) << out;
  ASSERT_EQ(Lumen("get actor " + actor_id, &out), 0) << out;
  json got = json::parse(out, nullptr, false);
  ASSERT_FALSE(got.is_discarded()) << out;
  EXPECT_EQ(got["actor_id"], actor_id);
  EXPECT_EQ(Lumen("get task " + std::string(32, 'f'), &out), 1);
  EXPECT_NE(out.find("no tasks row has task_id"), std::string::npos) << out;
  ASSERT_EQ(Lumen("summary tasks", &out), 0) << out;
  EXPECT_NE(out.find("Square"), std::string::npos) << out;
  EXPECT_NE(out.find("FINISHED:6"), std::string::npos) << out;
  EXPECT_NE(out.find("Greeter::Hello"), std::string::npos) << out;

  // Bad input: a clear message and a usage exit code.
  EXPECT_EQ(Lumen("list tasks -f colour=red", &out), 2);
  EXPECT_NE(out.find("cannot filter tasks by 'colour'"), std::string::npos) << out;
  EXPECT_EQ(Lumen("list spaceships", &out), 2);
  EXPECT_NE(out.find("unknown resource 'spaceships'"), std::string::npos) << out;
}

TEST_F(StateClusterTest, HttpServesTheStateApiAndRefusesBadRequests) {
  RunWorkload();
  const std::string& http = cluster_.dashboard_address();
  HttpReply nodes = Http(http, bhttp::verb::get, "/api/v0/nodes");
  ASSERT_EQ(nodes.status, 200) << nodes.body.dump();
  EXPECT_EQ(nodes.body["total"], 3);
  // Paging over HTTP: every finished task once.
  ASSERT_TRUE(WaitUntil([&] {
    return Http(http, bhttp::verb::get, "/api/v0/tasks?filter=state%3DFINISHED")
               .body.value("total", 0) == 10;  // 6 tasks, 3 calls, 1 creation
  }));
  std::set<std::string> seen;
  std::string token;
  for (int page = 0; page < 20; ++page) {
    HttpReply reply = Http(http, bhttp::verb::get,
                           "/api/v0/tasks?filter=state%3DFINISHED&limit=3&token=" + token);
    ASSERT_EQ(reply.status, 200) << reply.body.dump();
    for (const json& row : reply.body["rows"]) {
      seen.insert(row["task_id"].get<std::string>() + "/" + row["attempt_number"].dump());
    }
    token = reply.body["next_token"];
    if (token.empty()) break;
  }
  EXPECT_EQ(seen.size(), 10u);
  HttpReply summary = Http(http, bhttp::verb::get, "/api/v0/actors/summarize");
  ASSERT_EQ(summary.status, 200);
  EXPECT_EQ(summary.body["total"], 1);

  struct Bad {
    bhttp::verb verb;
    std::string target;
    std::string body;
    int status;
    std::string says;
  };
  std::vector<Bad> bad = {
      {bhttp::verb::get, "/api/v0/tasks?filter=colour%3Dred", "", 400, "cannot filter"},
      {bhttp::verb::get, "/api/v0/tasks?limit=-3", "", 400, "limit"},
      {bhttp::verb::get, "/api/v0/tasks?limit=1000000", "", 400, "page through"},
      {bhttp::verb::get, "/api/v0/tasks?token=%zz", "", 400, "malformed"},
      {bhttp::verb::get, "/api/v0/spaceships", "", 404, "unknown resource"},
      {bhttp::verb::get, "/etc/passwd", "", 404, "no such route"},
      {bhttp::verb::delete_, "/api/v0/tasks", "", 405, "takes GET"},
      {bhttp::verb::post, "/api/v0/tasks", std::string(2 << 20, 'x'), 413, "larger than"},
  };
  for (const Bad& request : bad) {
    HttpReply reply = Http(http, request.verb, request.target, request.body);
    EXPECT_EQ(reply.status, request.status) << request.target;
    ASSERT_TRUE(reply.body.is_object()) << request.target;
    EXPECT_NE(reply.body.value("error", "").find(request.says), std::string::npos)
        << request.target << ": " << reply.body.dump();
  }
  // The head still serves after all that.
  EXPECT_EQ(Http(http, bhttp::verb::get, "/api/v0/jobs").status, 200);
}

}  // namespace
}  // namespace lumen::test
