// A C++ exception thrown through five frames that allocate is caught normally while the
// library records whole stacks (the unwinder must not replace libgcc_s's _Unwind_* for the
// program). Prints "caught depth 5" and OK.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

__attribute__((noinline)) static void frame(int depth, std::vector<std::string> &keep) {
    keep.push_back(std::string(40 + depth, 'x'));
    if (depth == 5)
        throw std::runtime_error("depth " + std::to_string(depth));
    frame(depth + 1, keep);
    keep.pop_back();
}

int main() {
    int caught = 0;
    for (int i = 0; i < 100; i++) {
        std::vector<std::string> keep;
        try {
            frame(1, keep);
        } catch (const std::runtime_error &e) {
            if (i == 0)
                std::printf("caught %s\n", e.what());
            caught++;
        }
    }
    if (caught != 100)
        return 1;
    std::puts("OK");
    return 0;
}
