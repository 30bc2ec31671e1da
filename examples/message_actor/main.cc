// message_actor: actors as shared, mutable state (Ray's MessageActor). Three worker tasks
// hold a handle to one MessageActor and add messages to it; meanwhile the driver polls
// the actor for what arrived and prints it. Ray's add_message and get_and_clear_messages
// are AddMessage and GetAndClearMessages here.
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace {

constexpr int kWorkers = 3;
constexpr int kMessagesPerWorker = 10;
constexpr int kPolls = 5;

}  // namespace

class MessageActor {
 public:
  static MessageActor* Create() { return new MessageActor(); }
  void AddMessage(std::string message) { messages_.push_back(std::move(message)); }
  // Returns the messages received since the last call, and forgets them.
  std::vector<std::string> GetAndClearMessages() {
    std::vector<std::string> messages;
    messages.swap(messages_);
    return messages;
  }

 private:
  std::vector<std::string> messages_;
};
LUMEN_REMOTE(MessageActor::Create, &MessageActor::AddMessage, &MessageActor::GetAndClearMessages);

// Sends a message every 100 ms. It waits for its last message before returning: calls
// from one caller run in order, so then every message it sent has arrived.
void WorkerFunc(lumen::ActorHandle<MessageActor> message_actor, int j) {
  lumen::ObjectRef<void> last;
  for (int i = 0; i < kMessagesPerWorker; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    last = message_actor.Task(&MessageActor::AddMessage)
               .Remote("Message " + std::to_string(i) + " from worker " + std::to_string(j) + ".");
  }
  lumen::Get(last);
}
LUMEN_REMOTE(WorkerFunc);

namespace {

void Print(const std::vector<std::string>& messages) {
  std::cout << "New messages: [";
  for (size_t i = 0; i < messages.size(); ++i) std::cout << (i ? ", " : "") << messages[i];
  std::cout << "]" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);

  lumen::ActorHandle<MessageActor> message_actor = lumen::Actor(MessageActor::Create).Remote();

  // The workers mostly sleep, so each asks for half a CPU: all three run at once even on
  // two cores.
  std::vector<lumen::ObjectRef<void>> workers;
  for (int j = 0; j < kWorkers; ++j) {
    workers.push_back(lumen::Task(WorkerFunc).SetResource("CPU", 0.5).Remote(message_actor, j));
  }

  std::vector<std::string> received;
  auto poll = [&] {
    std::vector<std::string> messages =
        *lumen::Get(message_actor.Task(&MessageActor::GetAndClearMessages).Remote());
    Print(messages);
    received.insert(received.end(), messages.begin(), messages.end());
  };
  for (int p = 0; p < kPolls; ++p) {
    poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  lumen::Get(workers);  // every worker is done, and so are its messages
  poll();

  // Every message arrived once, and each worker's in the order it sent them.
  std::map<int, std::vector<std::string>> by_worker;
  for (const std::string& message : received) {
    size_t at = message.find("from worker ");
    if (at == std::string::npos) continue;
    by_worker[std::stoi(message.substr(at + 12))].push_back(message);
  }
  bool ok = received.size() == size_t(kWorkers * kMessagesPerWorker) &&
            by_worker.size() == size_t(kWorkers);
  for (int j = 0; j < kWorkers && ok; ++j) {
    for (int i = 0; i < kMessagesPerWorker; ++i) {
      ok &= by_worker[j].size() == size_t(kMessagesPerWorker) &&
            by_worker[j][i] ==
                "Message " + std::to_string(i) + " from worker " + std::to_string(j) + ".";
    }
  }
  std::cout << received.size() << " messages from " << by_worker.size()
            << " workers: " << (ok ? "OK" : "MISSING OR OUT OF ORDER") << std::endl;

  lumen::Shutdown();
  return ok ? 0 : 1;
}
