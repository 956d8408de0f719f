/* Shared by C++ test programs: ints, int arrays and strings made and released 1000 times
 * through new, new[], delete and delete[]. */
#ifndef CXX_CHURN_H
#define CXX_CHURN_H
#include <string>

static void cxx_churn() {
    for (int i = 0; i < 1000; i++) {
        int *volatile one = new int(i);
        int *volatile many = new int[10 + i % 7];
        std::string s(100 + i % 50, 'x');
        many[0] = *one;
        delete one;
        delete[] many;
    }
}
#endif
