// A vector made with new and never deleted: its storage, grown by push_back, leaks. The leak
// report must name the function that pushed (push_many) among its frames.
#include <cstdio>
#include <vector>

std::vector<int> *volatile lost;

__attribute__((noinline)) void push_many(std::vector<int> *v, int n) {
    for (int i = 0; i < n; i++)
        v->push_back(i);
}

int main() {
    std::vector<int> *v = new std::vector<int>;
    push_many(v, 1000);
    std::printf("%zu\n", v->size());
    lost = nullptr;
    v = nullptr;
    return 0;
}
