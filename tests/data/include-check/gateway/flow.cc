#include "mitm/chars.h"  // expect-violation
#include "sni/sni.h"
#include "gateway/flow.h"
