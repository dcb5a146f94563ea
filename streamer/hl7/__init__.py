"""Hospital boundaries over HL7 v2 / MLLP: the IHE PCD-04 alert reporter (`enecg acm`) and the WCM waveform
gateway (`enecg hl7-gateway`). Message building and reading live in `messages`, MLLP links in `mllp`."""
