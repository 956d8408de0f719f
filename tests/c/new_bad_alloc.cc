// operator new that cannot be satisfied throws std::bad_alloc and the program catches it; the
// nothrow forms return NULL. Argument "limit": requests beyond RLIMIT_AS (set here to 400000 KiB,
// as `ulimit -v 400000`) through new, new[], aligned new/new[] and the nothrow forms, plus the
// new_handler protocol: a handler that returns is called again after each failed attempt, a
// handler that throws has its exception propagate through operator new (or makes the nothrow
// forms return NULL). Argument "absurd": a request above PTRDIFF_MAX through new and nothrow new.
// One line per case on stdout, then OK.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/resource.h>

static void fail(const char *what, const char *why) {
    printf("%s: %s\n", what, why);
    fflush(stdout);
    exit(1);
}

// Runs f, which must throw std::bad_alloc (E is the exception type expected).
template <class E, class F> static void expect_throw(const char *what, F f) {
    try {
        void *p = f();
        printf("%s: returned %p\n", what, p);
        fail(what, "no exception");
    } catch (E &) {
        printf("%s: %s\n", what, "thrown");
    } catch (...) {
        fail(what, "wrong exception");
    }
}

template <class F> static void expect_null(const char *what, F f) {
    try {
        void *p = f();
        if (p != nullptr)
            fail(what, "not NULL");
        printf("%s: NULL\n", what);
    } catch (...) {
        fail(what, "exception from a nothrow form");
    }
}

// Thrown by the throwing handler: derived from bad_alloc, as the standard asks of handlers.
struct handler_gave_up : std::bad_alloc {};

static int calls;
static void handler_returns() {
    // A handler that returns is called again after each failed attempt; the third call gives up
    // by removing itself, so the next failure throws bad_alloc.
    if (++calls == 3)
        std::set_new_handler(nullptr);
}
static void handler_throws() {
    ++calls;
    throw handler_gave_up();
}

static volatile size_t huge_size = (size_t)1 << 40; // 1 TiB, beyond the address-space limit
static volatile size_t absurd_size = (size_t)PTRDIFF_MAX + 4096;

static void limit_cases() {
    struct rlimit rl = {400000UL * 1024, 400000UL * 1024};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        fail("setrlimit", strerror(errno));
    const size_t n = huge_size;
    const std::align_val_t al{64};

    expect_throw<std::bad_alloc>("new", [&] { return ::operator new(n); });
    expect_throw<std::bad_alloc>("new[]", [&] { return ::operator new[](n); });
    expect_throw<std::bad_alloc>("new char[]", [&] { return (void *)new char[n]; });
    expect_throw<std::bad_alloc>("aligned new", [&] { return ::operator new(n, al); });
    expect_throw<std::bad_alloc>("aligned new[]", [&] { return ::operator new[](n, al); });
    expect_null("nothrow new", [&] { return ::operator new(n, std::nothrow); });
    expect_null("nothrow new[]", [&] { return ::operator new[](n, std::nothrow); });
    expect_null("nothrow char[]", [&] { return (void *)new (std::nothrow) char[n]; });
    expect_null("nothrow aligned new", [&] { return ::operator new(n, al, std::nothrow); });
    expect_null("nothrow aligned new[]", [&] { return ::operator new[](n, al, std::nothrow); });

    calls = 0;
    std::set_new_handler(handler_returns);
    expect_throw<std::bad_alloc>("new, returning handler", [&] { return ::operator new(n); });
    printf("handler calls %d\n", calls);
    calls = 0;
    std::set_new_handler(handler_returns);
    expect_null("nothrow new, returning handler",
                [&] { return ::operator new(n, std::nothrow); });
    printf("handler calls %d\n", calls);

    calls = 0;
    std::set_new_handler(handler_throws);
    expect_throw<handler_gave_up>("new, throwing handler", [&] { return ::operator new(n); });
    expect_throw<handler_gave_up>("new[], throwing handler", [&] { return ::operator new[](n); });
    expect_throw<handler_gave_up>("aligned new, throwing handler",
                                  [&] { return ::operator new(n, al); });
    expect_null("nothrow new, throwing handler", [&] { return ::operator new(n, std::nothrow); });
    expect_null("nothrow aligned new[], throwing handler",
                [&] { return ::operator new[](n, al, std::nothrow); });
    printf("handler calls %d\n", calls);
    std::set_new_handler(nullptr);

    // Still a working heap afterwards.
    char *p = new char[1000];
    memset(p, 1, 1000);
    delete[] p;
}

static void absurd_cases() {
    const size_t n = absurd_size;
    expect_throw<std::bad_alloc>("absurd new", [&] { return ::operator new(n); });
    expect_null("absurd nothrow new", [&] { return ::operator new(n, std::nothrow); });
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "absurd") == 0)
        absurd_cases();
    else
        limit_cases();
    printf("OK\n");
    return 0;
}
