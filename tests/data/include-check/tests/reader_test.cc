#include "sni/reader.h"
#include "mitm/chars.h"
#include "gateway/flow.h"
