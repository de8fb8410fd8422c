// A non-owning reference to a callable, for callbacks that never outlive the
// call they are passed to. Unlike std::function it never allocates: a lambda
// capturing more than two pointers made std::function call malloc and free
// for every TCP segment of a tracked connection.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace soh {

template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
public:
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
    FunctionRef(F&& f)  // NOLINT: implicit, like std::function
        : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* obj, Args... args) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
          }) {}

    R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

private:
    void* obj_;
    R (*call_)(void*, Args...);
};

}  // namespace soh
