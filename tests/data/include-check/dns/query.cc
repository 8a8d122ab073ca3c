#include "base/result.h"
#include "sni/reader.h"  // expect-violation
#include "sni/sni.h"  // expect-violation
