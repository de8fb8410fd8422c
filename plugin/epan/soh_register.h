/* Entry points of the epan glue, callable from C. */
#ifndef SOH_REGISTER_H
#define SOH_REGISTER_H

#ifdef __cplusplus
extern "C" {
#endif

void soh_register_protocol(void);
void soh_register_handoff(void);
void soh_register_stats(void);

#ifdef __cplusplus
}
#endif

#endif
