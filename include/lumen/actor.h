// lumen::Actor — stateful remote objects: create, call, name, kill.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "lumen/detail/counted_ref.h"
#include "lumen/detail/registry.h"
#include "lumen/detail/runtime.h"
#include "lumen/errors.h"
#include "lumen/object_ref.h"
#include "lumen/task.h"

namespace lumen {

namespace detail {

template <typename M>
struct MethodSignature;
template <typename T, typename R, typename... P>
struct MethodSignature<R (T::*)(P...)> {
  using Class = T;
  using Result = R;
  using Params = std::tuple<P...>;
};
template <typename T, typename R, typename... P>
struct MethodSignature<R (T::*)(P...) const> : MethodSignature<R (T::*)(P...)> {};
template <typename T, typename R, typename... P>
struct MethodSignature<R (T::*)(P...) noexcept> : MethodSignature<R (T::*)(P...)> {};
template <typename T, typename R, typename... P>
struct MethodSignature<R (T::*)(P...) const noexcept> : MethodSignature<R (T::*)(P...)> {};

template <typename... Params, typename... Args>
std::vector<SerializedArg> SerializeArgs(std::tuple<Params...>*, Args&&... args) {
  static_assert(sizeof...(Args) == sizeof...(Params),
                "lumen: Remote() takes as many arguments as the function");
  std::vector<SerializedArg> out;
  out.reserve(sizeof...(Args));
  (out.push_back(SerializeArg<Params>(std::forward<Args>(args))), ...);
  return out;
}

}  // namespace detail

/// A call of one actor method, with its options.
template <typename M>
class ActorTaskCaller {
  using Signature = detail::MethodSignature<M>;

 public:
  using Result = typename Signature::Result;
  ActorTaskCaller(std::string actor_id, detail::CountedRef handle, M method)
      : actor_id_(std::move(actor_id)), handle_(std::move(handle)), method_(method) {}

  /// A name for the call, shown in logs and errors.
  ActorTaskCaller& SetName(std::string name) {
    name_ = std::move(name);
    return *this;
  }

  /// Sends the call. Calls from one process run in the order they were made. Throws
  /// ActorDiedError when this process already knows the actor is dead,
  /// FunctionNotFoundError when the method is not registered.
  template <typename... Args>
  ObjectRef<Result> Remote(Args&&... args) {
    detail::CheckInitialized("ActorHandle::Task(...).Remote");
    if (actor_id_.empty()) throw ActorDiedError("lumen: call on a nil ActorHandle");
    const std::string* name = detail::MethodNameOf(detail::MethodKey(method_));
    if (name == nullptr) {
      throw FunctionNotFoundError(
          "lumen: the method passed to Task() is not registered; add it to LUMEN_REMOTE "
          "as &Class::Method at namespace scope");
    }
    auto serialized = detail::SerializeArgs(
        static_cast<typename Signature::Params*>(nullptr), std::forward<Args>(args)...);
    return ObjectRef<Result>::Adopt(
        detail::SubmitActorTask(actor_id_, handle_.data().id, *name, std::move(serialized),
                                name_));
  }

 private:
  std::string actor_id_;
  detail::CountedRef handle_;  // a copy: the actor lives at least until the call is made
  M method_;
  std::string name_;
};

/// A copyable, serializable handle to an actor of class T. Every copy, in any process,
/// can call it. The handles of an unnamed, non-detached actor are counted like
/// ObjectRefs: once the last one anywhere is gone (and the calls made through them have
/// finished), the actor ends. A named or detached actor lives until it is killed (or, if
/// not detached, its creator's job ends).
template <typename T>
class ActorHandle {
 public:
  ActorHandle() = default;

  /// Starts a call of `method`, a member function of T registered with LUMEN_REMOTE.
  template <typename M>
  ActorTaskCaller<M> Task(M method) const {
    static_assert(std::is_member_function_pointer_v<M>,
                  "lumen: ActorHandle::Task takes &Class::Method");
    static_assert(std::is_same_v<typename detail::MethodSignature<M>::Class, T>,
                  "lumen: the method must be declared in the actor's class itself (for an "
                  "inherited one, add a method to the class that calls it)");
    return ActorTaskCaller<M>(id_, handle_, method);
  }

  /// Ends the actor. no_restart (the default): for good — later calls and calls still
  /// pending throw ActorDiedError, GetActor no longer finds it. no_restart=false: as if
  /// it crashed; it restarts when max_restarts allows.
  void Kill(bool no_restart = true) const {
    detail::CheckInitialized("ActorHandle::Kill");
    detail::KillActor(id_, no_restart);
  }

  /// The actor id in hex.
  std::string ID() const { return detail::HexOf(id_); }
  bool IsNil() const { return id_.empty(); }
  bool operator==(const ActorHandle& other) const { return id_ == other.id_; }
  bool operator!=(const ActorHandle& other) const { return id_ != other.id_; }

  /// Internal: a handle that counts nothing (a named or detached actor).
  static ActorHandle FromBinaryId(std::string id) {
    ActorHandle handle;
    handle.id_ = std::move(id);
    return handle;
  }
  /// Internal: a handle with its reference, adopted (the runtime counted it) or counted
  /// now (received from elsewhere).
  static ActorHandle WithRef(std::string id, detail::RefData ref, bool adopt) {
    ActorHandle handle;
    handle.id_ = std::move(id);
    if (!ref.id.empty()) {
      handle.handle_ = adopt ? detail::CountedRef::Adopt(std::move(ref))
                             : detail::CountedRef::FromData(std::move(ref));
    }
    return handle;
  }
  const std::string& BinaryId() const { return id_; }
  const detail::RefData& HandleRef() const { return handle_.data(); }

 private:
  std::string id_;
  detail::CountedRef handle_;  // empty: not counted
};

/// Creation of an actor from its factory (a registered function returning T*).
template <typename F>
class ActorCreator;

template <typename T, typename... Params>
class ActorCreator<T* (*)(Params...)> {
 public:
  using Factory = T* (*)(Params...);
  explicit ActorCreator(Factory factory) : factory_(factory) {}

  /// Registers the actor under `name` in the job's namespace (or `namespace_`). A name
  /// taken by a live actor makes Remote throw ConfigError.
  ActorCreator& SetName(std::string name, std::string namespace_ = "") {
    if (name.empty()) throw ConfigError("lumen: SetName needs a non-empty name");
    options_.name = std::move(name);
    options_.namespace_ = std::move(namespace_);
    return *this;
  }
  ActorCreator& SetLifetime(ActorLifetime lifetime) {
    options_.detached = lifetime == ActorLifetime::kDetached;
    return *this;
  }
  /// Resources the actor holds while it lives (default: none).
  ActorCreator& SetResource(const std::string& name, double amount) {
    detail::ValidateResource(name, amount);
    options_.resources[name] = amount;
    return *this;
  }
  ActorCreator& SetResources(const std::map<std::string, double>& resources) {
    for (const auto& [name, amount] : resources) SetResource(name, amount);
    return *this;
  }
  /// Restarts after a crash (default 0; -1: forever).
  ActorCreator& SetMaxRestarts(int max_restarts) {
    if (max_restarts < -1) throw ConfigError("lumen: SetMaxRestarts takes -1 or more");
    options_.max_restarts = max_restarts;
    return *this;
  }
  /// Resends of a call whose actor crashed while running it (default 0; -1: forever).
  ActorCreator& SetMaxTaskRetries(int max_task_retries) {
    if (max_task_retries < -1) throw ConfigError("lumen: SetMaxTaskRetries takes -1 or more");
    options_.max_task_retries = max_task_retries;
    return *this;
  }
  /// Calls run at once on a thread pool in the actor (default 1: one at a time, in
  /// order).
  ActorCreator& SetMaxConcurrency(int max_concurrency) {
    if (max_concurrency < 1) throw ConfigError("lumen: SetMaxConcurrency takes 1 or more");
    options_.max_concurrency = max_concurrency;
    return *this;
  }
  /// Where the actor may live (lumen/scheduling.h; default: the GCS's choice, the
  /// caller's node first). Throws ConfigError for a NodeAffinityStrategy without a valid
  /// node id.
  ActorCreator& SetSchedulingStrategy(SchedulingStrategy strategy) {
    detail::ValidateStrategy(strategy);
    options_.scheduling = std::move(strategy);
    return *this;
  }
  /// Places the actor in bundle `bundle_index` of `group` (-1: any of its bundles): it
  /// runs where that bundle is reserved and holds its resources out of the bundle (its
  /// demand must fit in it: ConfigError when it is created otherwise). It restarts there
  /// (per max_restarts) when the bundle is placed again after a node died, and is killed
  /// when the group is removed. Replaces SetSchedulingStrategy.
  ActorCreator& SetPlacementGroup(const PlacementGroup& group, int bundle_index = -1) {
    options_.placement = detail::MakePlacementTarget(group, bundle_index);
    return *this;
  }

  /// Creates the actor; returns at once with a handle usable immediately (calls made
  /// before it is alive wait, in order).
  template <typename... Args>
  ActorHandle<T> Remote(Args&&... args) {
    detail::CheckInitialized("Actor(...).Remote");
    const std::string* name =
        detail::FunctionNameOf(reinterpret_cast<const void*>(factory_));
    if (name == nullptr) {
      throw FunctionNotFoundError(
          "lumen: the factory passed to Actor() is not registered; add it to LUMEN_REMOTE "
          "at namespace scope");
    }
    auto serialized = detail::SerializeArgs(static_cast<std::tuple<Params...>*>(nullptr),
                                            std::forward<Args>(args)...);
    detail::CreatedActor created =
        detail::CreateActor(*name, typeid(T).name(), std::move(serialized), options_);
    return ActorHandle<T>::WithRef(std::move(created.id), std::move(created.handle),
                                   /*adopt=*/true);
  }

 private:
  Factory factory_;
  detail::ActorOptions options_;
};

/// Starts building an actor made by `factory`, which must be registered with LUMEN_REMOTE.
template <typename T, typename... Params>
ActorCreator<T* (*)(Params...)> Actor(T* (*factory)(Params...)) {
  return ActorCreator<T* (*)(Params...)>(factory);
}

/// The live actor named `name` in `namespace_` (empty: this job's namespace), or nullopt.
/// Throws ConfigError when it is not a T.
template <typename T>
std::optional<ActorHandle<T>> GetActor(const std::string& name,
                                       const std::string& namespace_ = "") {
  detail::CheckInitialized("GetActor");
  std::string id = detail::GetNamedActor(name, namespace_, typeid(T).name());
  if (id.empty()) return std::nullopt;
  return ActorHandle<T>::FromBinaryId(std::move(id));
}

/// Inside an actor method: ends the actor cleanly once the method unwinds; it is not
/// restarted. The call that ran ExitActor gets ActorDiedError. Elsewhere: ConfigError.
[[noreturn]] inline void ExitActor() { detail::ExitActor(); }

/// Inside an actor: true when this instance was made by a restart.
inline bool WasCurrentActorRestarted() { return detail::WasCurrentActorRestarted(); }

}  // namespace lumen

// ActorHandles serialize as [actor id] (not counted) or [actor id, handle id, owner]; a
// counted one inside a value is a nested reference, and deserializing it makes this
// process a borrower of the actor's handles, as for an ObjectRef.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <typename T>
  struct pack<lumen::ActorHandle<T>> {
    template <typename Stream>
    packer<Stream>& operator()(packer<Stream>& o, const lumen::ActorHandle<T>& handle) const {
      const lumen::detail::RefData& ref = handle.HandleRef();
      if (ref.id.empty()) {
        o.pack_array(1);
        o.pack(handle.BinaryId());
        return o;
      }
      lumen::detail::OnRefSerialized(ref);
      o.pack_array(3);
      o.pack(handle.BinaryId());
      o.pack(ref.id);
      o.pack(ref.owner);
      return o;
    }
  };
  template <typename T>
  struct convert<lumen::ActorHandle<T>> {
    const msgpack::object& operator()(const msgpack::object& o,
                                      lumen::ActorHandle<T>& handle) const {
      if (o.type != msgpack::type::ARRAY || (o.via.array.size != 1 && o.via.array.size != 3)) {
        throw msgpack::type_error();
      }
      std::string id;
      o.via.array.ptr[0].convert(id);
      lumen::detail::RefData ref;
      if (o.via.array.size == 3) {
        o.via.array.ptr[1].convert(ref.id);
        o.via.array.ptr[2].convert(ref.owner);
      }
      handle = lumen::ActorHandle<T>::WithRef(std::move(id), std::move(ref), /*adopt=*/false);
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
