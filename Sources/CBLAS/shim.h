#include <cblas.h>

/* OpenBLAS extensions: its cblas.h declares them, named here so the Swift side sees what it relies on. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
