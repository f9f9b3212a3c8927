#include "core/check.h"

namespace pagedattn::detail {

void fail(ErrorKind kind, std::string message) { throw Error(kind, std::move(message)); }

}  // namespace pagedattn::detail
