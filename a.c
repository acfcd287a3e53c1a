#include "cfg.h"
int f(void){return CFG;}
