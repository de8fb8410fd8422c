#include "method.h"

namespace soh {

Method method_of(std::string_view token) {
    for (const MethodInfo& m : kMethods)
        if (m.http && m.method != Method::Other && token == m.name) return m.method;
    return Method::Other;
}

}  // namespace soh
