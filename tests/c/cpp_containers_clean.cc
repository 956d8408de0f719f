// A correct C++ program: std::vector, std::string, std::map, std::unordered_map, shared_ptr
// churn, new/delete, new[]/delete[] and sized deletes. Prints OK; no report under debugging.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct Node {
    std::string name;
    std::vector<int> values;
    virtual ~Node() = default;
};
struct Big : Node {
    char pad[100];
};

int main() {
    std::map<std::string, std::vector<std::string>> m;
    std::unordered_map<int, std::string> u;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 2000; i++) {
            std::string k = "key" + std::to_string(i * 7 % 1000);
            m[k].push_back(std::string(i % 100, 'x') + std::to_string(round));
            u[i] = k + k;
        }
        for (int i = 0; i < 1000; i += 2)
            m.erase("key" + std::to_string(i));
        u.clear();
    }
    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < 5000; i++) {
        std::unique_ptr<Node> n(i % 3 ? static_cast<Node *>(new Big) : new Node);
        n->name = std::string(i % 50, 'n');
        n->values.assign(i % 70, i);
        nodes.push_back(std::move(n));
    }
    nodes.erase(nodes.begin(), nodes.begin() + 2500);
    std::vector<std::shared_ptr<std::string>> shared;
    for (int i = 0; i < 3000; i++)
        shared.push_back(std::make_shared<std::string>(std::to_string(i)));
    long total = 0;
    for (auto &s : shared)
        total += static_cast<long>(s->size());
    for (int i = 0; i < 1000; i++) {
        int *a = new int[i + 1];
        a[i] = i;
        total += a[i];
        delete[] a;
        double *d = new double(i);
        total += static_cast<long>(*d);
        delete d;
    }
    std::printf("%zu %zu %ld\n", m.size(), nodes.size(), total);
    std::printf("OK\n");
    return 0;
}
