/* Calls a function of personality_lib that calls the library's own rust_eh_personality: a
 * preloaded library exporting one would take the call. Prints what it returned, then OK. */
#include <stdio.h>

int call_own_personality(void);

int main(void) {
    printf("%d\nOK\n", call_own_personality());
    return 0;
}
