/* A library that defines and exports rust_eh_personality, as a Rust library built as a dylib
 * does (rustc's driver), and reaches it through the dynamic linker, as its unwind tables do. */
int rust_eh_personality(void) {
    return 42;
}

int call_own_personality(void) {
    return rust_eh_personality();
}
