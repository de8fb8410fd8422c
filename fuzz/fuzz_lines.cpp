// Fuzz target: LineAssembler (line_assembler.h) driven by a random sequence
// of feed / next_line / take_raw / take_raw_view / take_all / reset calls.
// Checks its contract: lines hold no LF and never exceed max_line, and the
// byte accounting of buffered() stays exact.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "line_assembler.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    const std::size_t max_line = fdp.ConsumeIntegralInRange<std::size_t>(1, 300);
    soh::LineAssembler la(max_line);
    std::size_t buffered = 0;
    std::size_t ops = 0;

    while (fdp.remaining_bytes() > 0 && ++ops < 4096) {
        switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
            case 0:
            case 1:
            case 2: {  // feed a chunk, sometimes a long run of one byte
                std::string chunk;
                if (fdp.ConsumeBool()) {
                    chunk = fdp.ConsumeRandomLengthString(512);
                } else {
                    std::size_t n = fdp.ConsumeIntegralInRange<std::size_t>(0, 20000);
                    chunk.assign(n, static_cast<char>(fdp.ConsumeIntegral<std::uint8_t>()));
                }
                la.feed(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size());
                buffered += chunk.size();
                break;
            }
            case 3:
            case 4: {  // drain lines
                int n = fdp.ConsumeIntegralInRange<int>(1, 64);
                while (n-- > 0) {
                    auto line = la.next_line();
                    if (!line) break;
                    if (line->text.size() > max_line) std::abort();
                    if (line->text.find('\n') != std::string_view::npos) std::abort();
                    if (line->overlong && line->text.size() != max_line) std::abort();
                    // The view must stay readable until the next call.
                    volatile char sink = 0;
                    for (char c : line->text) sink = static_cast<char>(sink ^ c);
                    (void)sink;
                }
                buffered = la.buffered();  // next_line() consumes an unknown amount
                break;
            }
            case 5: {
                std::size_t want = fdp.ConsumeIntegralInRange<std::size_t>(0, 70000);
                std::size_t got = la.take_raw(want);
                if (got != std::min(want, buffered)) std::abort();
                buffered -= got;
                break;
            }
            case 6: {
                std::size_t want = fdp.ConsumeIntegralInRange<std::size_t>(0, 4096);
                auto v = la.take_raw_view(want);
                if (v.size() != std::min(want, buffered)) std::abort();
                volatile char sink = 0;
                for (char c : v) sink = static_cast<char>(sink ^ c);
                (void)sink;
                buffered -= v.size();
                break;
            }
            case 7:
                if (fdp.ConsumeBool()) {
                    std::string all = la.take_all();
                    if (all.size() != buffered) std::abort();
                } else {
                    la.reset();
                }
                buffered = 0;
                break;
        }
        if (la.buffered() != buffered) std::abort();
    }
    return 0;
}
