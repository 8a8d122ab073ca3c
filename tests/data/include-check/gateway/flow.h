// The daemon.
#pragma once
