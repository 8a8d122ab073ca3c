#include "sni/reader.h"
#include "sni/sni.h"
