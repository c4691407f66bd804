"""Page script of the Latent map page (a file, so that st.navigation and AppTest.switch_page both find it)."""

from app.views import latent_map
from app.views.run import run_page

run_page(latent_map, "Latent map")
