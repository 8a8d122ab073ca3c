// tollgate: internal to sni/
#pragma once
