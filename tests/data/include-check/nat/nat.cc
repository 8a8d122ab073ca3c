#include "gateway/flow.h"  // expect-violation
#include "base/result.h"
