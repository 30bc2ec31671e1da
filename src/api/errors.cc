// Out-of-line destructors: the key functions that give each error type one typeinfo,
// exported from the library, so that catch clauses in user code match.
#include "lumen/errors.h"

namespace lumen {

Error::~Error() = default;
TaskError::~TaskError() = default;
ActorDiedError::~ActorDiedError() = default;
WorkerCrashedError::~WorkerCrashedError() = default;
ObjectLostError::~ObjectLostError() = default;
OwnerDiedError::~OwnerDiedError() = default;
GetTimeoutError::~GetTimeoutError() = default;
FunctionNotFoundError::~FunctionNotFoundError() = default;
ObjectStoreFullError::~ObjectStoreFullError() = default;
TaskCancelledError::~TaskCancelledError() = default;
ConfigError::~ConfigError() = default;

}  // namespace lumen
