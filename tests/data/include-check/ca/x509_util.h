// tollgate: internal to ca/
#pragma once
